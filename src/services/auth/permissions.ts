export const PERMISSIONS = [
  'conversation:encryptionKey:view',
  'conversation:encryptionKey:edit',
  'conversation:securedData:view',
  'conversation:securedData:edit',
  'conversation:encryption:use',
  'audit:log:view',
  'admin:organization:manage',
  'admin:token:manage',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/**
 * Cross-organization administration (create organizations, mint or revoke tokens in any of them):
 * only principals of the platform organization may hold these. A tenant's principal never does —
 * it is refused at creation, and ignored at authentication should an older database hold one.
 * `admin:token:manage` is the organization-level counterpart: the tokens of the caller's own org.
 */
export const PLATFORM_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>(['admin:organization:manage']);
