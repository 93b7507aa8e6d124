#!/usr/bin/env node
// `node scripts/mutation-survivors.mjs [folder]`: the mutants a Stryker run left undetected, with the
// source line each one changed — the list docs/TESTING.md has to explain, one by one.
import { existsSync, readFileSync } from 'node:fs';

const folder = process.argv[2] ?? 'lifecycle';
const file = `reports/mutation/${folder}.json`;
if (!existsSync(file)) {
  console.error(`no report at ${file}: run \`npm run mutate -- ${folder}\` first`);
  process.exit(2);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
const wanted = new Set(process.argv.includes('--timeouts') ? ['Survived', 'NoCoverage', 'Timeout'] : ['Survived', 'NoCoverage']);
const totals = {};
for (const [path, entry] of Object.entries(report.files)) {
  const lines = entry.source.split('\n');
  for (const m of entry.mutants) {
    totals[m.status] = (totals[m.status] ?? 0) + 1;
    if (!wanted.has(m.status)) continue;
    const { line, column } = m.location.start;
    const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 70);
    console.log(`${path}:${line}:${column} ${m.status} ${m.mutatorName} → ${replacement}`);
    console.log(`    ${lines[line - 1].trim().slice(0, 110)}`);
  }
}
console.log(JSON.stringify(totals));
