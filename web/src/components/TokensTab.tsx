import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { ApiError } from '../api/client';
import { PERMISSION, type ApiToken, type CreatedApiToken } from '../api/types';
import { copyText } from '../clipboard';
import { formatDateTime } from '../format';
import { useSession } from '../session-context';
import { ErrorNotice, Loading, MissingPermission } from './Notices';

/**
 * The organization's API tokens (admin:token:manage): list them (never their secrets), create one
 * with permissions the signed-in token holds, revoke, rotate. A new secret is shown once.
 */
export function TokensTab({ active }: { active: boolean }) {
  const { api, can, permissions } = useSession();
  const id = useId();
  const [tokens, setTokens] = useState<ApiToken[]>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [secret, setSecret] = useState<{ token: CreatedApiToken; verb: string }>();
  const [confirming, setConfirming] = useState<string>();
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState<ReadonlySet<string>>(new Set());
  const [expires, setExpires] = useState('');
  const [copied, setCopied] = useState(false);
  const grantable = [...(permissions ?? [])].filter((p) => p !== 'admin:organization:manage').sort();

  const load = useCallback(async () => {
    try {
      setTokens(await api.tokens());
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  }, [api]);

  useEffect(() => {
    if (active) void load();
  }, [active, load]);

  async function act(action: () => Promise<void>) {
    setBusy(true);
    setError(undefined);
    try {
      await action();
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  function create(event: FormEvent) {
    event.preventDefault();
    void act(async () => {
      // datetime-local is the user's local time; the API takes an RFC 3339 instant with its zone.
      const expiresAt = expires ? new Date(expires).toISOString() : undefined;
      const created = await api.createToken({ name: name.trim() || 'api-client', permissions: [...chosen], ...(expiresAt ? { expiresAt } : {}) });
      setSecret({ token: created, verb: 'created' });
      setCopied(false);
      setName('');
      setChosen(new Set());
      setExpires('');
    });
  }

  if (!can(PERMISSION.manageTokens) || (error instanceof ApiError && error.status === 403 && tokens === undefined)) {
    return <MissingPermission permission={PERMISSION.manageTokens} what="your organization's API tokens" />;
  }

  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>API tokens</h2>
      <p>Tokens of your organization. convault keeps only a hash of each: a secret is shown once, when it is created or rotated.</p>
      {secret && (
        <div className="notice success" role="status">
          <p>
            Token <code>{secret.token.id}</code> {secret.verb}. Copy it now; it is not shown again:
          </p>
          <p>
            <code data-field="new-token">{secret.token.token}</code>{' '}
            <button type="button" className="button secondary" onClick={() => void copyText(secret.token.token).then(setCopied)}>
              {copied ? 'Copied' : 'Copy'}
            </button>
          </p>
        </div>
      )}
      {error !== undefined && <ErrorNotice error={error} />}
      {!tokens && !error && <Loading what="tokens" />}
      {tokens && (
        <div className="table-wrap" tabIndex={0} role="region" aria-labelledby={`${id}-caption`}>
          <table className="table">
            <caption id={`${id}-caption`}>API tokens, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Starts with</th>
                <th scope="col">Permissions</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">State</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.id} data-token-id={t.id}>
                  <td>{t.name}</td>
                  <td>
                    <code>{t.prefix}…</code>
                  </td>
                  <td>{t.permissions.join(', ')}</td>
                  <td>{formatDateTime(t.createdAt)}</td>
                  <td>{t.expiresAt ? formatDateTime(t.expiresAt) : 'never'}</td>
                  <td data-field="state">{t.state}</td>
                  <td>
                    {t.state === 'active' && confirming !== t.id && (
                      <>
                        <button type="button" className="button secondary" disabled={busy} onClick={() => void act(async () => setSecret({ token: await api.rotateToken(t.id), verb: `replaces ${t.prefix}…` }))}>
                          Rotate <span className="visually-hidden">{t.name}</span>
                        </button>{' '}
                        <button type="button" className="button secondary" disabled={busy} onClick={() => setConfirming(t.id)}>
                          Revoke <span className="visually-hidden">{t.name}</span>
                        </button>
                      </>
                    )}
                    {confirming === t.id && (
                      <span role="group" aria-label={`Revoke ${t.name}?`}>
                        <button
                          type="button"
                          className="button danger"
                          disabled={busy}
                          onClick={() =>
                            void act(async () => {
                              await api.revokeToken(t.id);
                              setConfirming(undefined);
                            })
                          }
                        >
                          Confirm revoke
                        </button>{' '}
                        <button type="button" className="button secondary" onClick={() => setConfirming(undefined)}>
                          Cancel
                        </button>
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <form onSubmit={create} aria-labelledby={`${id}-create`}>
        <h3 id={`${id}-create`}>Create a token</h3>
        <div className="field">
          <label htmlFor={`${id}-name`}>Name</label>
          <input id={`${id}-name`} type="text" maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <fieldset className="field">
          <legend>Permissions (only those your token holds)</legend>
          {grantable.map((p) => (
            <label key={p} className="checkbox">
              <input
                type="checkbox"
                checked={chosen.has(p)}
                onChange={(e) => setChosen(new Set(e.target.checked ? [...chosen, p] : [...chosen].filter((c) => c !== p)))}
              />{' '}
              <code>{p}</code>
            </label>
          ))}
        </fieldset>
        <div className="field">
          <label htmlFor={`${id}-expires`}>Expires (optional, your local time)</label>
          <input id={`${id}-expires`} type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} />
        </div>
        <div className="actions">
          <button type="submit" className="button" disabled={busy || chosen.size === 0}>
            Create token
          </button>
        </div>
      </form>
    </section>
  );
}
