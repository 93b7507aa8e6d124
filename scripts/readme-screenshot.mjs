// Screenshot of the Encryption Keys page for the README, taken in Debian's Chromium from a running
// server: node scripts/readme-screenshot.mjs <base URL> <admin token> [output.png]
// scripts/readme-walkthrough.sh calls it (SCREENSHOT=1) once the walkthrough's steps are done, so
// the picture shows exactly the state the README describes.
import { chromium } from 'playwright-core';

const [base, token, out = 'docs/images/encryption-keys.png'] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: node scripts/readme-screenshot.mjs <base URL> <admin token> [output.png]');
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, baseURL: base });
  await page.goto('/');
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Encryption Keys' }).waitFor();
  await page.locator('[data-field="health"] .badge').waitFor();
  await page.locator('tr[data-key-arn]').nth(1).waitFor();
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
}
