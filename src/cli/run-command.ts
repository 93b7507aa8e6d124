import { ConfigError } from '../config.js';
import { AppError } from '../services/errors.js';

/** Runs a CLI action: a failure is one line on stderr and a non-zero exit, never a stack trace for user errors. */
export async function runCommand(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`convault: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof AppError) {
      process.stderr.write(`convault: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`convault: ${(err as Error)?.message ?? String(err)}\n`);
    if (process.env.CONVAULT_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
    process.exit(1);
  }
}

export function printResult(value: unknown, json: boolean | undefined, human: () => string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 2) : human()) + '\n');
}
