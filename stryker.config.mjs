// Mutation testing (`npm run mutate [folder...]`): one Stryker run per folder, each with the tests
// that exercise that folder in-process. Scores and surviving mutants are kept in docs/TESTING.md.
const FOLDERS = {
  crypto: {
    mutate: ['src/crypto/**/*.ts', '!src/crypto/**/*.test.ts', '!src/crypto/test-helpers.ts', '!src/crypto/index.ts'],
    tests: ['src/crypto/*.test.ts'],
  },
  kms: {
    mutate: ['src/kms/**/*.ts', '!src/kms/**/*.test.ts'],
    // The gateway, breaker, clients and start-up keys against one local KMS, the failure classification,
    // metrics and CLI address in process, the key-policy helper checked by the local KMS's policy
    // evaluator; the HTTP suites reach src/kms too but cost minutes per mutant.
    tests: [
      'src/kms/*.test.ts',
      'test/kms-*.test.ts',
      'src/localkms/policy-evaluator.test.ts',
    ],
  },
  lifecycle: {
    mutate: ['src/services/lifecycle/**/*.ts'],
    // The job model, the services in process on one runtime, the race and policy guarantees; the
    // HTTP flows of test/lifecycle-api (dozens of conversations per test) cost minutes per mutant.
    tests: ['test/lifecycle-job-model.test.ts', 'test/lifecycle-service.test.ts', 'test/lifecycle-guarantees.test.ts'],
  },
  keyconfig: {
    // The AWS-specific rules the key configuration relies on live in the AWS KMS adapter now.
    mutate: ['src/services/keyconfig/**/*.ts', '!src/services/keyconfig/**/*.test.ts', 'src/providers/aws-kms/{alias-arn,remediation,key-test}.ts'],
    // The service in process on SQLite and a local KMS, the ARN rules, the remediation sentences; the
    // HTTP suite (test/keyconfig-api) adds only routing on top and costs a runtime start per mutant.
    tests: ['src/services/keyconfig/*.test.ts', 'src/providers/aws-kms/alias-arn.test.ts', 'test/keyconfig-service.test.ts', 'test/keyconfig-remediation.test.ts', 'test/local-key-manager.test.ts'],
  },
};

const folder = process.env.CONVAULT_MUTATE_FOLDER ?? 'crypto';
const target = FOLDERS[folder];
if (!target) throw new Error(`unknown mutation folder "${folder}"; one of ${Object.keys(FOLDERS).join(', ')}`);
// Read by vitest.mutate.config.ts in Stryker's test-runner processes, which inherit this environment.
process.env.CONVAULT_MUTATE_TESTS = target.tests.join(',');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  mutate: target.mutate,
  coverageAnalysis: 'perTest',
  // The machine is shared: at most two test processes.
  concurrency: 2,
  timeoutMS: 30_000,
  reporters: ['clear-text', 'progress-append-only', 'json', 'html'],
  jsonReporter: { fileName: `reports/mutation/${folder}.json` },
  htmlReporter: { fileName: `reports/mutation/${folder}.html` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: folder === 'crypto' ? 85 : 75, low: 60, break: null },
  ignorePatterns: ['dist', 'web/dist', 'data', 'reports', 'test-results', '.tmp'],
};
