import { errorTypeOf, KeyProviderError, type KeyTestReport, type KeyTestStep, type KeyTestStepError } from './key-provider.js';

/**
 * Runs a provider's Test steps in order and stops at the first failure, timing each one: the report
 * every adapter returns has the same shape, whatever steps it takes.
 */
export function createTestRun(opts: {
  classify(err: unknown, operation?: string): KeyProviderError;
  remediation(failure: KeyProviderError): string;
  now?: () => number;
}) {
  const now = opts.now ?? (() => performance.now());
  const steps: KeyTestStep[] = [];
  let lastError: KeyTestStepError | undefined;

  function errorOf(err: unknown, step: string): KeyTestStepError {
    const failure = opts.classify(err, step);
    return {
      message: opts.remediation(failure),
      code: 'customer.key.error',
      errorType: errorTypeOf(failure.kind),
      failureKind: failure.kind,
      ...(failure.providerError ? { providerError: failure.providerError } : {}),
    };
  }

  return {
    get failed(): boolean {
      return lastError !== undefined;
    },
    /** Runs one step unless an earlier one failed; the value, or undefined when this or an earlier step failed. */
    async step<T>(step: string, fn: () => Promise<T> | T, detail?: (value: T) => string | undefined): Promise<T | undefined> {
      if (lastError) return undefined;
      const started = now();
      try {
        const value = await fn();
        const text = detail?.(value);
        steps.push({ step, ok: true, ms: Math.round(now() - started), ...(text ? { detail: text } : {}) });
        return value;
      } catch (err) {
        lastError = errorOf(err, step);
        steps.push({ step, ok: false, ms: Math.round(now() - started), error: lastError });
        return undefined;
      }
    },
    report(extra: { keyArn?: string } = {}): KeyTestReport {
      return { ok: !lastError, steps, ...(extra.keyArn && !lastError ? { keyArn: extra.keyArn } : {}), ...(lastError ? { lastError } : {}) };
    },
  };
}
