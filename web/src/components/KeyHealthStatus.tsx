import { useState } from 'react';
import { ApiError, describeError } from '../api/client';
import type { KeyConfiguration, KeyHealth } from '../api/types';
import { useSession } from '../session-context';
import { useLoad } from '../use-load';
import { HealthBadge } from './HealthBadge';

/** The configured key's health as the last probe found it; editors can probe now. */
export function KeyHealthStatus({ config, canProbe }: { config: KeyConfiguration; canProbe: boolean }) {
  const { api } = useSession();
  const [loaded, reload] = useLoad<KeyHealth>(
    () =>
      api.keyHealth(config.id).catch((err: unknown) => {
        if (err instanceof ApiError && err.isMissingRoute) return { status: 'unknown' as const };
        throw err;
      }),
    [api, config.id, config.version],
  );
  const [probed, setProbed] = useState<KeyHealth>();
  const [probing, setProbing] = useState(false);
  const [problem, setProblem] = useState<string>();

  async function probe() {
    setProbing(true);
    setProblem(undefined);
    try {
      setProbed(await api.probeKeyHealth(config.id));
    } catch (err) {
      setProblem(describeError(err));
    } finally {
      setProbing(false);
    }
  }

  const health = probed ?? (loaded.status === 'ready' ? loaded.value : undefined);
  return (
    <>
      {health ? <HealthBadge health={health} /> : loaded.status === 'error' ? describeError(loaded.error) : 'Checking…'}{' '}
      <button
        type="button"
        className="link-button"
        onClick={() => {
          setProbed(undefined);
          reload();
        }}
        aria-label="Refresh key health"
      >
        Refresh
      </button>
      {canProbe && (
        <button type="button" className="link-button" onClick={probe} disabled={probing} aria-label="Check now: probe the key health">
          {probing ? 'Checking…' : 'Check now'}
        </button>
      )}
      {problem && (
        <span className="field-error" role="alert">
          {' '}
          {problem}
        </span>
      )}
    </>
  );
}
