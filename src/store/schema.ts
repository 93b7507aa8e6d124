/** Row types of the convault database, shared by every DAL. Timestamps are epoch milliseconds. */

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface PrincipalsTable {
  id: string;
  org_id: string;
  name: string;
  kind: 'user' | 'client';
  /** JSON array of permission strings. */
  permissions: string;
  created_at: number;
}

export interface ApiTokensTable {
  id: string;
  org_id: string;
  principal_id: string;
  /** Hex SHA-256 of the token; the token itself is never stored. */
  token_hash: string;
  /** First characters of the token, so an admin can tell tokens apart. */
  prefix: string;
  created_at: number;
  revoked_at: number | null;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface Database {
  organizations: OrganizationsTable;
  principals: PrincipalsTable;
  api_tokens: ApiTokensTable;
  meta: MetaTable;
}
