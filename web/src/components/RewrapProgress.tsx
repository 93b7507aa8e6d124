import { useId } from 'react';
import type { Job, JobErrorGroup } from '../api/types';
import { formatCount, percent } from '../format';

const STATE_TEXT: Record<Job['state'], string> = {
  queued: 'Rewrap queued…',
  running: 'Rewrapping data keys to the current key…',
  succeeded: 'Rewrap finished: every data key is wrapped by the current key.',
  failed: 'Rewrap finished with failures: the data keys below were skipped and are not lost — fix their key as each reason says, then rewrap again.',
  cancelled: 'Rewrap cancelled.',
};

function errorText(error: Job['errors'][number]): string {
  if (typeof error === 'string') return error;
  const message = error.message ?? error.reason ?? error.error;
  const which = error.keyArn ?? error.dataKeyId;
  return [which, typeof message === 'string' ? message : JSON.stringify(error)].filter(Boolean).join(': ');
}

/** One failure reason: how many data keys, what to do, and which ones. */
function ErrorGroup({ job, group }: { job: Job; group: JobErrorGroup }) {
  const more = group.count - group.dataKeyIds.length;
  return (
    <li>
      <span>
        <strong>
          {group.count > 0 ? `${formatCount(group.count)} data key${group.count === 1 ? '' : 's'} failed` : 'The job failed'}
          {group.awsError ? ` (${group.awsError})` : ''}:
        </strong>{' '}
        {group.reason}
      </span>
      {group.dataKeyIds.length > 0 && (
        <span className="small">
          Data keys: {group.dataKeyIds.map((dataKeyId) => <code key={dataKeyId} className="arn">{dataKeyId} </code>)}
          {more > 0 && (
            <>
              and {formatCount(more)} more (all of them: <code>GET /api/v2/jobs/{job.id}/errors</code>)
            </>
          )}
        </span>
      )}
    </li>
  );
}

/** A rewrap job's progress bar, counts, state and errors. */
export function RewrapProgress({ job }: { job: Job }) {
  const id = useId();
  const finished = job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled';
  const pct = job.total === 0 ? (finished ? 100 : 0) : percent(job.done, job.total);
  return (
    <div className="job stack" data-job-state={job.state}>
      <label htmlFor={`${id}-bar`}>Rewrap progress</label>
      <progress id={`${id}-bar`} max={100} value={pct} aria-valuetext={`${pct} %`} />
      <p className="job-counts">
        <strong>{pct} %</strong> · {formatCount(job.done)} of {formatCount(job.total)} data keys rewrapped
        {job.failed > 0 && <> · {formatCount(job.failed)} failed</>}
      </p>
      <p role="status" className={job.state === 'failed' ? 'field-error' : undefined}>
        {STATE_TEXT[job.state] ?? job.state}
      </p>
      {job.errorGroups ? (
        job.errorGroups.length > 0 && (
          <ul className="job-errors">
            {job.errorGroups.map((group) => (
              <ErrorGroup key={`${group.keyArn}|${group.awsError}|${group.reason}`} job={job} group={group} />
            ))}
          </ul>
        )
      ) : (
        job.errors.length > 0 && (
          <ul className="job-errors">
            {job.errors.slice(0, 20).map((error, index) => (
              <li key={index}>{errorText(error)}</li>
            ))}
            {job.errors.length > 20 && <li>… and {job.errors.length - 20} more</li>}
          </ul>
        )
      )}
    </div>
  );
}
