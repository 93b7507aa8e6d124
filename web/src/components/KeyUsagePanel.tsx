import { useEffect, useId, useState } from 'react';
import { ApiError, describeError } from '../api/client';
import type { Job, KeyConfiguration, KeyUsageRow } from '../api/types';
import { formatCount, formatDateTime } from '../format';
import { rememberedJob, rememberJob } from '../session';
import { useSession } from '../session-context';
import { useLoad } from '../use-load';
import { ErrorNotice, Loading } from './Notices';
import { RewrapProgress } from './RewrapProgress';

const POLL_MS = 500;
const isFinished = (job: Job) => job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled';

interface KeyUsagePanelProps {
  config: KeyConfiguration;
  canEdit: boolean;
  /** Changes when something elsewhere (a Save) may have changed the usage. */
  refresh: number;
  onRewrapped(): void;
}

/** Which KMS keys protect the organization's data, and Rewrap to current key with live progress. */
export function KeyUsagePanel({ config, canEdit, refresh, onRewrapped }: KeyUsagePanelProps) {
  const { api } = useSession();
  const id = useId();
  const [usage, reloadUsage] = useLoad(() => api.keyUsage(config.id), [api, config.id, config.version, refresh]);
  // Which alias each key was saved under, so an admin recognizes the keys (best effort: the table works without it).
  const [history] = useLoad(() => api.keyConfigurationHistory(config.id).catch(() => []), [api, config.id, config.version]);
  const savedAlias = new Map<string, string>();
  for (const saved of history.status === 'ready' ? history.value : []) {
    if (saved.keyArn && saved.url && !savedAlias.has(saved.keyArn)) savedAlias.set(saved.keyArn, saved.url);
  }
  const [jobId, setJobId] = useState(() => rememberedJob(config.id));
  const [job, setJob] = useState<Job>();
  const [starting, setStarting] = useState(false);
  const [jobProblem, setJobProblem] = useState<string>();

  // Follow the job until it ends: one request at a time, every POLL_MS.
  useEffect(() => {
    if (!jobId) return;
    let live = true;
    let timer: number | undefined;
    const poll = async () => {
      try {
        const next = await api.job(jobId);
        if (!live) return;
        setJob(next);
        setJobProblem(undefined);
        if (isFinished(next)) {
          rememberJob(config.id, undefined);
          reloadUsage();
          onRewrapped();
          return;
        }
      } catch (err) {
        if (!live) return;
        if (err instanceof ApiError && err.status === 404) {
          rememberJob(config.id, undefined); // a job of an earlier session that the server no longer knows
          setJobId(undefined);
          return;
        }
        setJobProblem(`Could not read the rewrap progress: ${describeError(err)} Retrying…`);
      }
      timer = window.setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- follow one job id
  }, [api, jobId]);

  async function startRewrap() {
    setStarting(true);
    setJobProblem(undefined);
    try {
      const started = await api.startRewrap(config.id);
      setJob(started);
      rememberJob(config.id, started.id);
      setJobId(started.id);
    } catch (err) {
      setJobProblem(
        err instanceof ApiError && err.isMissingRoute ? 'This convault server does not offer rewrap yet.' : describeError(err),
      );
    } finally {
      setStarting(false);
    }
  }

  const rows = usage.status === 'ready' ? usage.value.entities : [];
  const toRewrap = rows.filter((r) => !r.current && r.dataKeys > 0).reduce((n, r) => n + r.dataKeys, 0);
  const running = job !== undefined && !isFinished(job);

  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <div className="card-header">
        <h2 id={`${id}-heading`}>Key usage</h2>
        <div className="actions">
          <button type="button" className="button secondary" onClick={reloadUsage} aria-label="Refresh key usage">
            Refresh
          </button>
          {canEdit && usage.status === 'ready' && (
            <button type="button" className="button primary" onClick={startRewrap} disabled={starting || running || toRewrap === 0}>
              Rewrap to current key
            </button>
          )}
        </div>
      </div>
      {usage.status === 'loading' && <Loading what="key usage" />}
      {usage.status === 'error' &&
        (usage.error instanceof ApiError && usage.error.isMissingRoute ? (
          <p>This convault server does not report key usage yet.</p>
        ) : (
          <ErrorNotice error={usage.error} retry={reloadUsage} />
        ))}
      {usage.status === 'ready' && (
        <>
          <p>
            Every KMS key that wraps a data key of your organization. Rewrap moves data keys to the current key (values are never
            rewritten); a key is <strong>safe to retire</strong> once no data depends on it.{' '}
            {toRewrap > 0
              ? `${formatCount(toRewrap)} data key${toRewrap === 1 ? '' : 's'} still depend${toRewrap === 1 ? 's' : ''} on an older key.`
              : 'Every data key is wrapped by the current key.'}
          </p>
          <div className="table-wrap" tabIndex={0} role="region" aria-labelledby={`${id}-caption`}>
            {/* On a phone each key is a block of labelled lines (styles.css), so Status never hides off-screen. */}
            <table className="table usage-table">
              <caption id={`${id}-caption`}>KMS keys that protect this organization's data</caption>
              <thead>
                <tr>
                  <th scope="col">KMS key</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">Data keys</th>
                  <th scope="col" className="num">Conversations</th>
                  <th scope="col" className="num">Values</th>
                  <th scope="col">Oldest</th>
                  <th scope="col">Newest</th>
                </tr>
              </thead>
              <tbody>
                {rows.length === 0 && (
                  <tr>
                    <td colSpan={7}>No data keys yet: nothing has been encrypted for this organization.</td>
                  </tr>
                )}
                {rows.map((row) => (
                  <tr key={row.keyArn} data-key-arn={row.keyArn} data-current={row.current}>
                    <th scope="row">
                      <code className="arn">{row.keyArn}</code>
                      {row.current && config.keyConfigurationType === 'None' && (
                        <span className="small block">the platform's own key (type None: convault manages it)</span>
                      )}
                      {savedAlias.has(row.keyArn) && (
                        <span className="small block">
                          saved as <code className="arn">{savedAlias.get(row.keyArn)!.replace(/^arn:[^:]+:kms:[^:]*:\d*:/, '')}</code>
                        </span>
                      )}
                    </th>
                    <td data-label="Status" className="usage-status">
                      <UsageStatus row={row} />
                    </td>
                    <td data-label="Data keys" className="num">{formatCount(row.dataKeys)}</td>
                    <td data-label="Conversations" className="num">{formatCount(row.conversations)}</td>
                    <td data-label="Values" className="num">{formatCount(row.values)}</td>
                    <td data-label="Oldest">{formatDateTime(row.oldest)}</td>
                    <td data-label="Newest">{formatDateTime(row.newest)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {job && <RewrapProgress job={job} />}
      {jobProblem && (
        <div className="notice error" role="alert">
          <p>{jobProblem}</p>
        </div>
      )}
    </section>
  );
}

/** Current, Safe to retire, In use, or Unusable with what to do (servers before statuses: derived). */
function UsageStatus({ row }: { row: KeyUsageRow }) {
  const status = row.status ?? (row.current ? 'Current' : row.safeToRetire ? 'SafeToRetire' : 'InUse');
  switch (status) {
    case 'Current':
      return <span className="badge badge-current">Current</span>;
    case 'SafeToRetire':
      return <span className="badge badge-safe">Safe to retire</span>;
    case 'Unusable':
      return (
        <>
          <span className="badge badge-unusable">Unusable</span>
          {row.problem && <span className="small block usage-problem">{row.problem}</span>}
        </>
      );
    default:
      return <span className="badge badge-in-use">In use</span>;
  }
}
