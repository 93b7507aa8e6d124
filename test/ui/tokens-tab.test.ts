import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/runtime.js';
import { launchBrowser, openUi, signIn, type UiPage } from './browser.js';

/** The Tokens tab in Debian's Chromium: an org admin creates, rotates and revokes tokens. */
describe('Admin UI: the Tokens tab in a real browser', () => {
  let server: TestServer;
  let browser: Browser;
  let ui: UiPage;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startTestServer('sqlite'), launchBrowser()]);
    ui = await openUi(browser, server.url);
  });
  afterAll(async () => {
    await ui?.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
  });

  const status = (token: string) => server.call('GET', '/api/v2/organizations/me', { token }).then((r) => r.status);

  it('creates a token shown once, rotates it, revokes it; the list never shows a secret', async () => {
    const { page } = ui;
    await signIn(ui, server.adminToken);
    await page.getByRole('tab', { name: 'Tokens' }).click();
    await page.getByRole('heading', { name: 'API tokens' }).waitFor();

    await page.getByLabel('Name').fill('nightly export');
    await page.getByRole('checkbox', { name: 'audit:log:view' }).check();
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = (await page.locator('[data-field="new-token"]').innerText()).trim();
    expect(secret).toMatch(/^cvt_/);
    expect(await status(secret)).toBe(200);
    const row = page.locator('tr', { hasText: 'nightly export' });
    await row.locator('[data-field="state"]', { hasText: 'active' }).waitFor();

    await row.getByRole('button', { name: /Rotate/ }).click();
    await page.getByText(/replaces/).waitFor();
    const rotated = (await page.locator('[data-field="new-token"]').innerText()).trim();
    expect(rotated).not.toBe(secret);
    expect(await status(rotated)).toBe(200);
    // Refused on every node within the token cache bound (CONVAULT_TOKEN_CACHE_MAX_AGE_MS, default 2 s).
    expect(await refusedWithin(status, secret, 2_500)).toBe(true);

    const active = page.locator('tr', { hasText: 'nightly export' }).filter({ has: page.locator('[data-field="state"]', { hasText: 'active' }) });
    await active.getByRole('button', { name: /Revoke/ }).click();
    await active.getByRole('button', { name: 'Confirm revoke' }).click();
    await page.locator('tr', { hasText: 'nightly export' }).locator('[data-field="state"]', { hasText: 'active' }).waitFor({ state: 'detached' });
    expect(await refusedWithin(status, rotated, 2_500)).toBe(true);

    const table = await page.locator('table').innerText();
    expect(table).not.toContain(secret);
    expect(table).not.toContain(rotated);
    expect(ui.problems).toEqual([]);
  });
});

/** Polls until the token is refused (401) or `boundMs` has passed. */
async function refusedWithin(status: (token: string) => Promise<number>, token: string, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    if ((await status(token)) === 401) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
