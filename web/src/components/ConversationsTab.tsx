import { useCallback, useRef, useState } from 'react';
import { ApiError } from '../api/client';
import { PERMISSION, type KeyConfiguration } from '../api/types';
import { useSession } from '../session-context';
import { useLoad } from '../use-load';
import { ConfigurationSummary } from './ConfigurationSummary';
import { KeyConfigForm } from './KeyConfigForm';
import { KeyPolicyPanel } from './KeyPolicyPanel';
import { KeyUsagePanel } from './KeyUsagePanel';
import { ErrorNotice, Loading, MissingPermission } from './Notices';

/** The Conversations tab, for tokens that may view the key configuration. */
export function ConversationsTab() {
  const { can } = useSession();
  if (!can(PERMISSION.viewKeys)) return <MissingPermission permission={PERMISSION.viewKeys} what="the key configuration" />;
  return <ConversationsKeys />;
}

/** Current configuration with Edit, key policy, key usage and rewrap. */
function ConversationsKeys() {
  const { api, can } = useSession();
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState<string>();
  const [configs, reloadConfigs] = useLoad(() => api.listKeyConfigurations(), [api]);
  const [usageRefresh, setUsageRefresh] = useState(0);
  const editButton = useRef<HTMLButtonElement | null>(null);
  // After a Save the configuration reloads and the Edit button may be drawn anew (or for the first
  // time, after Configure): whichever button appears within this moment takes the focus.
  const focusEditUntil = useRef(0);
  const editButtonRef = useCallback((el: HTMLButtonElement | null) => {
    editButton.current = el;
    if (el && Date.now() < focusEditUntil.current) el.focus();
  }, []);

  if (configs.status === 'loading') return <Loading what="the key configuration" />;
  if (configs.status === 'error') {
    const err = configs.error;
    if (err instanceof ApiError && err.status === 403) return <MissingPermission permission={PERMISSION.viewKeys} what="the key configuration" />;
    return <ErrorNotice error={err} retry={reloadConfigs} />;
  }

  const config = configs.value.entities[0];
  const canEdit = can(PERMISSION.editKeys);

  function finishEditing() {
    setEditing(false);
    // Back to the button that opened the form, for keyboard users.
    focusEditUntil.current = Date.now() + 5000;
    requestAnimationFrame(() => editButton.current?.focus());
  }

  function onSaved(config: KeyConfiguration) {
    setSaved(`Saved: version ${config.version} is in effect.`);
    finishEditing();
    reloadConfigs();
    setUsageRefresh((n) => n + 1);
  }

  return (
    <div className="stack-lg">
      <section className="card" aria-labelledby="current-heading">
        <div className="card-header">
          <h2 id="current-heading">Conversations key configuration</h2>
          {canEdit && !editing && (
            <button
              ref={editButtonRef}
              type="button"
              className="button primary"
              onClick={() => {
                setSaved(undefined);
                setEditing(true);
              }}
            >
              {config ? 'Edit' : 'Configure'}
            </button>
          )}
        </div>
        <p className="saved-status" role="status">
          {saved}
        </p>
        <ConfigurationSummary config={config} canEdit={canEdit} />
      </section>

      {editing && (
        <KeyConfigForm
          current={config}
          onCancel={finishEditing}
          onSaved={onSaved}
          onReload={() => {
            reloadConfigs();
            setEditing(false);
          }}
        />
      )}

      {/* The key policy is an AWS KMS key's; a key behind an XKS proxy is governed by the proxy's own policy. */}
      {config?.keyConfigurationType !== 'LocalKeyManager' && <KeyPolicyPanel />}

      {config && <KeyUsagePanel config={config} canEdit={canEdit} refresh={usageRefresh} onRewrapped={reloadConfigs} />}
    </div>
  );
}
