import { useId } from 'react';
import type { Job } from '../api/types';
import { formatCount, percent } from '../format';

const STATE_TEXT: Record<Job['state'], string> = {
  queued: 'Rewrap queued…',
  running: 'Rewrapping data keys to the current key…',
  succeeded: 'Rewrap finished: every data key is wrapped by the current key.',
  failed: 'Rewrap finished with failures: the data keys below were skipped and are not lost; fix their key and rewrap again.',
  cancelled: 'Rewrap cancelled.',
};

function errorText(error: Job['errors'][number]): string {
  if (typeof error === 'string') return error;
  const message = error.message ?? error.reason ?? error.error;
  const which = error.keyArn ?? error.dataKeyId;
  return [which, typeof message === 'string' ? message : JSON.stringify(error)].filter(Boolean).join(': ');
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
      {job.errors.length > 0 && (
        <ul className="job-errors">
          {job.errors.slice(0, 20).map((error, index) => (
            <li key={index}>{errorText(error)}</li>
          ))}
          {job.errors.length > 20 && <li>… and {job.errors.length - 20} more</li>}
        </ul>
      )}
    </div>
  );
}
