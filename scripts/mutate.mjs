#!/usr/bin/env node
// `npm run mutate [crypto|kms|lifecycle|keyconfig ...]`: Stryker, one folder after the other.
import { spawnSync } from 'node:child_process';

const ALL = ['crypto', 'kms', 'lifecycle', 'keyconfig'];
const folders = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
let failed = 0;
for (const folder of folders) {
  if (!ALL.includes(folder)) {
    console.error(`unknown folder "${folder}"; one of ${ALL.join(', ')}`);
    process.exit(2);
  }
  console.log(`\n=== mutation testing: ${folder} ===`);
  const r = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs'], {
    stdio: 'inherit',
    env: { ...process.env, CONVAULT_MUTATE_FOLDER: folder },
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
