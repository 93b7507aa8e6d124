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
  // Health applies to an organization's own key, wherever it is kept.
  const usesKms = config.keyConfigurationType !== 'None';
  const external = config.keyConfigurationType === 'LocalKeyManager';
  return (
    <>
      <dl className="summary">
        <div>
          <dt>Key configuration type</dt>
          <dd data-field="type">{typeLabel(config.keyConfigurationType)}</dd>
        </div>
        <div>
          <dt>{external ? 'XKS proxy URI prefix' : 'Alias ARN'}</dt>
          <dd data-field="url">{config.url ? <code className="arn">{config.url}</code> : '—'}</dd>
        </div>
        {external && (
          <>
            <div>
              <dt>External key id</dt>
              <dd data-field="keyId">{config.keyId ?? '—'}</dd>
            </div>
            <div>
              <dt>API id</dt>
              <dd data-field="apiId">{config.apiId ?? '—'}</dd>
            </div>
            <div>
              <dt>API key</dt>
              <dd data-field="apiKey">{config.apiKey ? `${config.apiKey} (saved, never shown)` : '—'}</dd>
            </div>
            {config.caBundle && (
              <div>
                <dt>CA bundle</dt>
                <dd data-field="caBundle">Custom (PEM, {config.caBundle.split('BEGIN CERTIFICATE').length - 1} certificate(s))</dd>
              </div>
            )}
          </>
        )}
        <div>
          <dt>{external ? 'Key reference' : 'Resolved key ARN'}</dt>
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
