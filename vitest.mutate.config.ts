import { defineConfig } from 'vitest/config';
import base from './vitest.config';

/**
 * The suite Stryker runs for one folder (see stryker.config.mjs): only the tests that exercise that
 * folder in-process (a spawned CLI runs dist/, which Stryker does not mutate), on SQLite only so a
 * mutant costs one database backend's worth of time.
 */
const include = (process.env.CONVAULT_MUTATE_TESTS ?? '').split(',').filter(Boolean);

export default defineConfig({
  test: {
    ...base.test,
    include,
    globalSetup: [],
    provide: { postgresUrl: '' },
  },
});
