import type { KeyConfiguration } from '../api/types';
import { formatDateTime, forThisPage, typeLabel } from '../format';
import { KeyHealthStatus } from './KeyHealthStatus';

interface ConfigurationSummaryProps {
  config: KeyConfiguration | undefined;
  canEdit: boolean;
}

/** The saved configuration: type, alias ARN, resolved key ARN, version, who saved it when, health, last error. */
export function ConfigurationSummary({ config, canEdit }: ConfigurationSummaryProps) {
  if (!config) {
    return (
      <p>
        No key configuration yet. Until you configure your key, secured data is protected by the platform's own KMS key (never stored in
        plaintext).
      </p>
    );
  }
  const usesKms = config.keyConfigurationType === 'KmsSymmetric';
  return (
    <>
      <dl className="summary">
        <div>
          <dt>Key configuration type</dt>
          <dd data-field="type">{typeLabel(config.keyConfigurationType)}</dd>
        </div>
        <div>
          <dt>Alias ARN</dt>
          <dd data-field="url">{config.url ? <code className="arn">{config.url}</code> : '—'}</dd>
        </div>
        <div>
          <dt>Resolved key ARN</dt>
          <dd data-field="keyArn">{config.keyArn ? <code className="arn">{config.keyArn}</code> : '—'}</dd>
        </div>
        <div>
          <dt>Version</dt>
          <dd data-field="version">{config.version}</dd>
        </div>
        <div>
          <dt>Updated</dt>
          <dd data-field="updated">
            {formatDateTime(config.updatedAt)} by {config.updatedBy.name}
          </dd>
        </div>
        {usesKms && (
          <div>
            <dt>Key health</dt>
            <dd data-field="health">
              <KeyHealthStatus config={config} canProbe={canEdit} />
            </dd>
          </div>
        )}
      </dl>
      {config.lastError && (
        <div className="notice error" role="status" data-field="lastError">
          <p>
            <strong>Last error{config.lastError.errorType ? ` (${config.lastError.errorType})` : ''}:</strong>{' '}
            {config.lastError.message ? forThisPage(config.lastError.message) : JSON.stringify(config.lastError)}
          </p>
        </div>
      )}
    </>
  );
}
