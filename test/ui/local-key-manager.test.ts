import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/databases.js';
import { runCli, spawnServe, type ServeProcess } from '../support/process.js';
import { spawnXksServe, type XksServeProcess } from '../support/xks.js';
import { launchBrowser, openUi, signIn, type UiPage } from './browser.js';

/**
 * The Encryption Keys page configures a LocalKeyManager key in Debian's Chromium: a real `convault
 * serve` and a reference XKS proxy started here (`convault xks serve`), the key and credentials
 * made with the CLI as a key manager's admin does. The type and its fields come from the server's
 * registry; the API key is a password box and never comes back.
 */

describe('Admin UI: LocalKeyManager (XKS proxy) in a real browser', () => {
  const dataDir = tempDir('convault-ui-lkm-');
  const xksDir = tempDir('convault-ui-lkm-xks-');
  let serve: ServeProcess;
  let xks: XksServeProcess;
  let browser: Browser;
  let ui: UiPage;
  let creds: { uriPrefix: string; accessKeyId: string; secretAccessKey: string };

  beforeAll(async () => {
    expect((await runCli(['xks', 'create-key', '--key-id', 'ui-key'], { CONVAULT_DATA_DIR: xksDir })).code).toBe(0);
    const issued = await runCli(['xks', 'credentials', '--uri-prefix', '/ui', '--json'], { CONVAULT_DATA_DIR: xksDir });
    creds = JSON.parse(issued.stdout);
    // The proxy first: it takes any free port, which spawnServe's own port choice must then avoid.
    xks = await spawnXksServe([], { CONVAULT_DATA_DIR: xksDir });
    [serve, browser] = await Promise.all([
      spawnServe({ CONVAULT_DATA_DIR: dataDir, CONVAULT_XKS_ALLOW_HTTP_LOOPBACK: 'true' }),
      launchBrowser(),
    ]);
    ui = await openUi(browser, serve.url);
    await signIn(ui, fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim());
  });

  afterAll(async () => {
    await ui?.close().catch(() => undefined);
    await browser?.close();
    await serve?.stop();
    xks?.proc.kill('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(xksDir, { recursive: true, force: true });
  });

  it('configures LocalKeyManager: fields from the registry, Test, Save, the API key masked', async () => {
    const { page } = ui;
    await page.getByRole('button', { name: 'Configure' }).click();
    await page.getByLabel('Key Configuration Type').selectOption({ label: 'Local key manager (XKS proxy)' });
    const apiKey = page.getByLabel('API key (SigV4 secret access key)');
    expect(await apiKey.getAttribute('type')).toBe('password');

    // Required fields are checked before anything is sent.
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    await page.locator('.field-error', { hasText: 'XKS proxy URI prefix is required.' }).waitFor();

    await page.getByLabel('XKS proxy URI prefix').fill(`${xks.url}${creds.uriPrefix}`);
    await page.getByLabel('External key id').fill('ui-key');
    await page.getByLabel('API id (SigV4 access key id)').fill(creds.accessKeyId);
    await apiKey.fill(creds.secretAccessKey);
    expect(await page.getByLabel('CA bundle (PEM, optional)').evaluate((el: any) => el.tagName)).toBe('TEXTAREA');

    await page.getByRole('button', { name: 'Test', exact: true }).click();
    const report = page.getByRole('region', { name: 'Test result' });
    await report.getByText('Test passed').waitFor();
    expect(await report.locator('li.step-passed').count()).toBe(5);
    expect(await report.locator('li[data-step="GetHealthStatus"]').innerText()).toContain('Proxy health');
    await ui.screenshot('lkm-01-test-passes');

    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('[data-field="version"]').filter({ hasText: /^1$/ }).waitFor();
    expect(await page.locator('[data-field="type"]').innerText()).toBe('Local key manager (XKS proxy)');
    expect(await page.locator('[data-field="keyId"]').innerText()).toBe('ui-key');
    expect(await page.locator('[data-field="apiKey"]').innerText()).toContain('********');
    expect(await page.locator('[data-field="keyArn"]').innerText()).toBe(`${xks.url}${creds.uriPrefix}/keys/ui-key`);
    // The AWS key policy panel is for AWS keys only.
    expect(await page.getByRole('heading', { name: 'Key policy' }).count()).toBe(0);
    await ui.screenshot('lkm-02-saved');

    // Edit: the secret is not filled back; left empty, the saved one is used by Test and kept by Save.
    await page.getByRole('button', { name: 'Edit' }).click();
    const again = page.getByLabel('API key (SigV4 secret access key)');
    expect(await again.inputValue()).toBe('');
    expect(await again.getAttribute('placeholder')).toContain('saved');
    expect(await page.getByLabel('External key id').inputValue()).toBe('ui-key');
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    await page.getByRole('region', { name: 'Test result' }).getByText('Test passed').waitFor();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('[data-field="version"]').filter({ hasText: /^2$/ }).waitFor();

    expect(await page.content()).not.toContain(creds.secretAccessKey);
    expect(ui.problems).toEqual([]);
  });
});
