import type { KeyConfigurationHistoryTable, KeyConfigurationsTable } from '../../store/schema.js';

export const KEY_CONFIG_BASE_PATH = '/api/v2/conversations/keyconfigurations';

export type KeyConfigurationType = 'KmsSymmetric' | 'None';

/** The API model: Genesys Cloud's shape plus convault's keyArn/updatedAt/updatedBy. */
export interface KeyConfigModel {
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

export interface KeyConfigBody {
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
  };
}

export function toHistoryModel(row: KeyConfigurationHistoryTable) {
  return {
    version: row.version,
    keyConfigurationType: row.type,
    url: row.url,
    ...(row.key_arn ? { keyArn: row.key_arn } : {}),
    savedAt: new Date(row.saved_at).toISOString(),
    savedBy: { id: row.saved_by_id, name: row.saved_by_name },
    testReport: JSON.parse(row.test_report) as unknown,
  };
}
