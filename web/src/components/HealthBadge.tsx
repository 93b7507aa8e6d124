import type { KeyHealth } from '../api/types';
import { formatDateTime, forThisPage } from '../format';

const LABELS: Record<KeyHealth['status'], string> = { ok: 'Healthy', degraded: 'Degraded', failed: 'Failed', unknown: 'Unknown' };

/** The key's health from the background probe: a word and a colour, never a colour alone. */
export function HealthBadge({ health }: { health: KeyHealth }) {
  const label = LABELS[health.status] ?? health.status;
  return (
    <span className="health">
      <span className={`badge health-${health.status}`}>{label}</span>
      {health.checkedAt && <span className="small"> checked {formatDateTime(health.checkedAt)}</span>}
      {health.deletionDate && <span className="small"> · key pending deletion on {formatDateTime(health.deletionDate)}</span>}
      {health.lastError?.message && <span className="small"> · {forThisPage(health.lastError.message)}</span>}
    </span>
  );
}
