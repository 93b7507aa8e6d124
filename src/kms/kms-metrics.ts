/** Counts KMS calls by operation and outcome; the benchmark and /metrics read them. */
export function createKmsMetrics() {
  const calls = new Map<string, { count: number; totalMs: number }>();
  const listeners: Array<(operation: string, outcome: string, ms: number) => void> = [];
  return {
    /** Also tells `listener` of every call (the Prometheus registry listens here). */
    subscribe(listener: (operation: string, outcome: string, ms: number) => void): void {
      listeners.push(listener);
    },
    record(operation: string, outcome: string, ms: number): void {
      for (const listener of listeners) listener(operation, outcome, ms);
      const key = `${operation}|${outcome}`;
      const entry = calls.get(key) ?? { count: 0, totalMs: 0 };
      entry.count++;
      entry.totalMs += ms;
      calls.set(key, entry);
    },
    /** Calls of one operation (any outcome), or of all operations. */
    count(operation?: string): number {
      let n = 0;
      for (const [key, entry] of calls) if (!operation || key.startsWith(`${operation}|`)) n += entry.count;
      return n;
    },
    snapshot(): Array<{ operation: string; outcome: string; count: number; totalMs: number }> {
      return [...calls].map(([key, e]) => {
        const [operation, outcome] = key.split('|') as [string, string];
        return { operation, outcome, ...e };
      });
    },
  };
}

export type KmsMetrics = ReturnType<typeof createKmsMetrics>;
