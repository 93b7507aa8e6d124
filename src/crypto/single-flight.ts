// Concurrent callers with the same key share one in-flight promise, so e.g. the first writes of
// one org share a single KMS GenerateDataKey call. The key is freed as soon as the promise settles,
// success or failure, so a failure is not cached: the next caller tries again.

export interface SingleFlight<T> {
  run(key: string, fn: () => Promise<T>): Promise<T>;
  /** Keys with a call in flight. */
  readonly size: number;
}

export function createSingleFlight<T>(): SingleFlight<T> {
  const inFlight = new Map<string, Promise<T>>();

  return {
    run(key, fn) {
      const existing = inFlight.get(key);
      if (existing !== undefined) return existing;

      let started: Promise<T>;
      try {
        started = Promise.resolve(fn());
      } catch (err) {
        started = Promise.reject(err); // a synchronous throw reaches every caller the same way
      }
      const shared = started.finally(() => {
        if (inFlight.get(key) === shared) inFlight.delete(key);
      });
      inFlight.set(key, shared);
      return shared;
    },

    get size() {
      return inFlight.size;
    },
  };
}
