import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api/client';
import { PERMISSION, type AuditEvent } from '../api/types';
import { formatDateTime } from '../format';
import { useSession } from '../session-context';
import { AuditDetails } from './AuditDetails';
import { ErrorNotice, Loading, MissingPermission } from './Notices';

const PAGE_SIZE = 25;
const SUGGESTED_ACTIONS = ['keyconfig.*', 'keyconfig.test', 'keyconfig.save', 'keyconfig.create', 'keyconfig.none', 'lifecycle.*', 'secureddata.*', 'keyhealth.*', 'encryption.*'];

type Listing = { events: AuditEvent[]; nextCursor?: string; action: string };

/** The organization's audit trail, newest first: filter by action, load more. Reloads each time the tab is shown. */
export function AuditTab({ active }: { active: boolean }) {
  const { api, can } = useSession();
  const id = useId();
  const [actionInput, setActionInput] = useState('');
  const [listing, setListing] = useState<Listing>();
  const [loading, setLoading] = useState<'first' | 'more'>();
  const [error, setError] = useState<unknown>();
  const [announcement, setAnnouncement] = useState('');
  const request = useRef(0);

  const loadFirst = useCallback(
    async (action: string) => {
      const mine = ++request.current;
      setLoading('first');
      setError(undefined);
      try {
        const page = await api.audits({ action: action || undefined, limit: PAGE_SIZE });
        if (mine !== request.current) return;
        setListing({ events: page.entities, nextCursor: page.nextCursor, action });
        setAnnouncement(`${page.entities.length}${page.nextCursor ? ' or more' : ''} events${action ? ` for ${action}` : ''}.`);
      } catch (err) {
        if (mine === request.current) setError(err);
      } finally {
        if (mine === request.current) setLoading(undefined);
      }
    },
    [api],
  );

  useEffect(() => {
    if (active) void loadFirst(listing?.action ?? '');
    // eslint-disable-next-line react-hooks/exhaustive-deps -- reload when the tab is shown
  }, [active, loadFirst]);

  async function loadMore() {
    if (!listing?.nextCursor) return;
    const mine = ++request.current;
    setLoading('more');
    try {
      const page = await api.audits({ action: listing.action || undefined, cursor: listing.nextCursor, limit: PAGE_SIZE });
      if (mine !== request.current) return;
      setListing({ events: [...listing.events, ...page.entities], nextCursor: page.nextCursor, action: listing.action });
      setAnnouncement(`${page.entities.length} more events loaded.`);
    } catch (err) {
      if (mine === request.current) setError(err);
    } finally {
      if (mine === request.current) setLoading(undefined);
    }
  }

  function filter(event: FormEvent) {
    event.preventDefault();
    void loadFirst(actionInput.trim());
  }

  if (!can(PERMISSION.viewAudit) || (error instanceof ApiError && error.status === 403)) {
    return <MissingPermission permission={PERMISSION.viewAudit} what="the audit trail" />;
  }

  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>Audit trail</h2>
      <p>Every key configuration Test and Save, secured-data access, rewrap and health change of your organization, newest first.</p>
      <form role="search" className="filter" onSubmit={filter} aria-label="Filter audit events">
        <div className="field">
          <label htmlFor={`${id}-action`}>Action</label>
          <input
            id={`${id}-action`}
            name="action"
            type="text"
            list={`${id}-actions`}
            autoComplete="off"
            spellCheck={false}
            value={actionInput}
            onChange={(e) => setActionInput(e.target.value)}
            aria-describedby={`${id}-action-hint`}
          />
          <datalist id={`${id}-actions`}>
            {SUGGESTED_ACTIONS.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
          <p id={`${id}-action-hint`} className="hint">
            An action (<code>keyconfig.save</code>) or a prefix (<code>keyconfig.*</code>); empty for all.
          </p>
        </div>
        <div className="actions">
          <button type="submit" className="button secondary" disabled={loading === 'first'}>
            Filter
          </button>
          {listing?.action && (
            <button
              type="button"
              className="button secondary"
              onClick={() => {
                setActionInput('');
                void loadFirst('');
              }}
            >
              Show all
            </button>
          )}
        </div>
      </form>
      <p className="visually-hidden" role="status">
        {announcement}
      </p>
      {error !== undefined && <ErrorNotice error={error} />}
      {!listing && loading && <Loading what="audit events" />}
      {listing && (
        <>
          <div className="table-wrap" tabIndex={0} role="region" aria-labelledby={`${id}-caption`}>
            <table className="table audit-table" aria-busy={loading === 'first'}>
              <caption id={`${id}-caption`}>
                Audit events{listing.action ? ` for ${listing.action}` : ''}, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Action</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Principal</th>
                  <th scope="col">Target</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {listing.events.length === 0 && (
                  <tr>
                    <td colSpan={6}>No events{listing.action ? ` for ${listing.action}` : ''}.</td>
                  </tr>
                )}
                {listing.events.map((event) => (
                  <tr key={event.id} data-action={event.action}>
                    <td>
                      <time dateTime={event.at}>{formatDateTime(event.at)}</time>
                    </td>
                    <td>
                      <code>{event.action}</code>
                    </td>
                    <td>
                      <span className={`badge outcome-${event.outcome}`}>{event.outcome}</span>
                    </td>
                    <td className="wrap">
                      {typeof event.details.principalName === 'string' ? (
                        <>
                          {event.details.principalName}
                          <span className="small block">{event.principal}</span>
                        </>
                      ) : (
                        event.principal
                      )}
                    </td>
                    <td className="wrap">{event.target ?? '—'}</td>
                    <td className="details">
                      <AuditDetails details={event.details} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {listing.nextCursor && (
            <div className="actions">
              <button type="button" className="button secondary" onClick={loadMore} disabled={loading !== undefined}>
                {loading === 'more' ? 'Loading…' : 'Load more'}
              </button>
            </div>
          )}
        </>
      )}
    </section>
  );
}
