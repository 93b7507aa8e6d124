import { KEY_CONFIGURATION_TYPES } from '../../providers/registry.js';
import type { KeyConfigurationHistoryTable, KeyConfigurationsTable, KeyConfigurationTypeName } from '../../store/schema.js';

export const KEY_CONFIG_BASE_PATH = '/api/v2/conversations/keyconfigurations';

export type KeyConfigurationType = KeyConfigurationTypeName;

/** What GET shows of a secret field that is set: it is write-only. */
export const SECRET_MASK = '********';

/** The stored `fields` column: the public fields, and which secret fields are set (sealed apart). */
export interface StoredFields {
  public: Record<string, string>;
  secrets: string[];
}

export function parseStoredFields(json: string | null): StoredFields {
  if (!json) return { public: {}, secrets: [] };
  const parsed = JSON.parse(json) as Partial<StoredFields>;
  return { public: parsed.public ?? {}, secrets: parsed.secrets ?? [] };
}

/** The type's fields other than url as answered: public ones as stored, secret ones masked. */
export function answeredFields(type: KeyConfigurationType, json: string | null): Record<string, string> {
  const stored = parseStoredFields(json);
  const out: Record<string, string> = {};
  for (const f of KEY_CONFIGURATION_TYPES[type].fields) {
    if (f.name === 'url') continue;
    if (f.secret) {
      if (stored.secrets.includes(f.name)) out[f.name] = SECRET_MASK;
    } else if (stored.public[f.name] !== undefined) {
      out[f.name] = stored.public[f.name]!;
    }
  }
  return out;
}

/** LocalKeyManager's fields beyond url (Genesys's keyId/apiId/apiKey, plus TLS material). */
export interface LocalKeyManagerFields {
  keyId?: string;
  apiId?: string;
  /** Write-only: answered masked; on a PUT, absent or the mask keeps the saved one. */
  apiKey?: string;
  caBundle?: string;
  clientCertificate?: string;
  clientKey?: string;
}

/** The API model: Genesys Cloud's shape plus convault's keyArn/updatedAt/updatedBy. */
export interface KeyConfigModel extends LocalKeyManagerFields {
  id: string;
  url: string;
  keyConfigurationType: KeyConfigurationType;
  lastError?: Record<string, unknown>;
  selfUri: string;
  version: number;
  keyArn?: string;
  updatedAt: string;
  updatedBy: { id: string; name: string };
}

export interface KeyConfigBody extends LocalKeyManagerFields {
  id?: string;
  keyConfigurationType: KeyConfigurationType;
  url?: string;
  version?: number;
}

export function toKeyConfigModel(row: KeyConfigurationsTable): KeyConfigModel {
  return {
    id: row.id,
    url: row.url,
    keyConfigurationType: row.type,
    ...(row.last_error ? { lastError: JSON.parse(row.last_error) as Record<string, unknown> } : {}),
    selfUri: `${KEY_CONFIG_BASE_PATH}/${row.id}`,
    version: row.version,
    ...(row.key_arn ? { keyArn: row.key_arn } : {}),
    updatedAt: new Date(row.updated_at).toISOString(),
    updatedBy: { id: row.updated_by_id, name: row.updated_by_name },
    ...answeredFields(row.type, row.fields),
  };
}

export function toHistoryModel(row: KeyConfigurationHistoryTable) {
  return {
    version: row.version,
    keyConfigurationType: row.type,
    url: row.url,
    ...(row.key_arn ? { keyArn: row.key_arn } : {}),
    ...answeredFields(row.type, row.fields),
    savedAt: new Date(row.saved_at).toISOString(),
    savedBy: { id: row.saved_by_id, name: row.saved_by_name },
    testReport: JSON.parse(row.test_report) as unknown,
  };
}
