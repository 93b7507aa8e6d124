import { randomUUID } from 'node:crypto';
import { badRequest, notFound } from '../errors.js';
import type { OrgDal } from './org-dal.js';

export interface Organization {
  id: string;
  name: string;
  createdAt: string;
}

export interface OrgServiceDeps {
  orgDal: Pick<OrgDal, 'insertOrganization' | 'findOrganization' | 'listOrganizations'>;
  clock?: () => number;
}

export type OrgService = ReturnType<typeof createOrgService>;

const toModel = (row: { id: string; name: string; created_at: number }): Organization => ({
  id: row.id,
  name: row.name,
  createdAt: new Date(row.created_at).toISOString(),
});

export function validateOrganizationName(name: unknown): string {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > 200) {
    throw badRequest('Organization name must be 1-200 characters.', { field: 'name' });
  }
  return name.trim();
}

export function createOrgService({ orgDal, clock = Date.now }: OrgServiceDeps) {
  return {
    async createOrganization(name: string): Promise<Organization> {
      const row = { id: randomUUID(), name: validateOrganizationName(name), created_at: clock() };
      await orgDal.insertOrganization(row);
      return toModel(row);
    },
    async getOrganization(id: string): Promise<Organization> {
      const row = await orgDal.findOrganization(id);
      if (!row) throw notFound('Organization');
      return toModel(row);
    },
    async listOrganizations(): Promise<Organization[]> {
      return (await orgDal.listOrganizations()).map(toModel);
    },
  };
}
