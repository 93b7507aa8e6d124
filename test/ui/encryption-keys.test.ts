import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/databases.js';
import { freePort, runCli, spawnServe, type ServeProcess } from '../support/process.js';
import { DESKTOP, PHONE, attributes, horizontalOverflow, isFocused, launchBrowser, openUi, signIn, waitForFocus, type UiPage } from './browser.js';

/**
 * The Encryption Keys page (issue 7) in Debian's Chromium against a real `convault serve` with its
 * embedded local KMS; `convault kms …` plays the customer's AWS account. The scenarios build on
 * each other in order, like an admin's afternoon: configure, rotate, rewrap, stop, audit.
 */

const ALIAS_LABEL = 'ARN of the AWS KMS key alias for generating Customer Secured Data key';
const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const PLATFORM_ACCOUNT = '444455556666';
const DEMO_ALIAS = 'alias/demo-customer-key';
const SECOND_ALIAS = 'alias/demo-customer-key-2026';
/** Set to refresh the README's screenshot from this run: CONVAULT_UPDATE_DOCS_SCREENSHOT=1 npm test. */
const DOCS_IMAGE = path.resolve('docs/images/encryption-keys.png');

describe('Admin UI: the Encryption Keys page in a real browser', () => {
  const dataDir = tempDir('convault-ui-');
  let serve: ServeProcess;
  let browser: Browser;
  let kmsEnv: Record<string, string>;
  let adminToken: string;
  let orgId: string;
  let admin: UiPage;
  const opened: UiPage[] = [];
  const keys: Record<string, { keyArn: string; aliasArn: string }> = {};
  const conversations: string[] = [];

  async function http(method: string, urlPath: string, body?: unknown, token = adminToken) {
    const res = await fetch(`${serve.url}${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  async function kms(...args: string[]) {
    const res = await runCli(['kms', ...args], kmsEnv);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout;
  }

  async function describeKey(alias: string) {
    const meta = JSON.parse(await kms('describe-key', '--account', ACCOUNT, '--region', REGION, '--key', alias, '--json'));
    keys[alias] = { keyArn: meta.keyArn ?? meta.arn, aliasArn: `arn:aws:kms:${REGION}:${ACCOUNT}:${alias}` };
    return keys[alias]!;
  }

  async function createKey(alias: string, allowOrg: boolean) {
    const out = await kms('create-key', '--account', ACCOUNT, '--region', REGION, '--alias', alias, ...(allowOrg ? ['--allow-org', orgId] : []), '--json');
    keys[alias] = JSON.parse(out);
    return keys[alias]!;
  }

  async function open(viewport = DESKTOP) {
    const ui = await openUi(browser, serve.url, viewport);
    opened.push(ui);
    return ui;
  }

  async function token(permissions: string[]) {
    const res = await runCli(['tokens', 'create', '--org', orgId, '--permissions', permissions.join(','), '--json'], { CONVAULT_DATA_DIR: dataDir });
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout).token as string;
  }

  async function writeSecuredData(count: number, tag: string) {
    for (let i = 0; i < count; i++) {
      const id = `ui-${tag}-${i}`;
      const res = await http('PUT', `/api/v2/conversations/${id}/secureddata`, { data: { card: '4111111111111111', tag } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      conversations.push(id);
    }
  }

  const summaryField = (page: Page, field: string) => page.locator(`[data-field="${field}"]`);
  const aliasBox = (page: Page) => page.getByLabel(ALIAS_LABEL);

  /** The element(s) the box names in aria-describedby. */
  async function describedBy(box: Locator): Promise<string> {
    const ids = ((await box.getAttribute('aria-describedby')) ?? '').split(/\s+/).filter(Boolean);
    const texts = await Promise.all(ids.map((id) => box.page().locator(`[id="${id}"]`).innerText()));
    return texts.join(' | ');
  }

  /** Waits for the saved configuration to show this version. */
  async function savedVersion(page: Page, version: number) {
    await summaryField(page, 'version').filter({ hasText: new RegExp(`^${version}$`) }).waitFor();
  }

  beforeAll(async () => {
    const kmsPort = String(await freePort());
    kmsEnv = { CONVAULT_DATA_DIR: dataDir, CONVAULT_LOCAL_KMS_PORT: kmsPort };
    [serve, browser] = await Promise.all([spawnServe({ CONVAULT_DATA_DIR: dataDir, CONVAULT_LOCAL_KMS_PORT: kmsPort }), launchBrowser()]);
    adminToken = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    orgId = (await http('GET', '/api/v2/organizations/me')).body.id;
  });

  afterAll(async () => {
    for (const ui of opened) await ui.close().catch(() => undefined);
    await browser?.close();
    await serve?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('signs in with a token using only the keyboard, keeps it for the tab, and signs out', async () => {
    const ui = await open();
    const { page } = ui;
    expect((await page.request.get('/')).headers()['content-security-policy']).toContain("script-src 'self'");

    await page.getByLabel('API token').fill('cvt_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token is not valid').waitFor();

    // Keyboard only: Tab from the top of a fresh page reaches the token box; Enter signs in.
    await page.reload();
    const tokenBox = page.getByLabel('API token');
    for (let i = 0; i < 5 && !(await isFocused(tokenBox)); i++) await page.keyboard.press('Tab');
    expect(await isFocused(tokenBox)).toBe(true);
    await page.keyboard.type(adminToken);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Encryption Keys' }).waitFor();
    await page.getByText('Default organization').waitFor();
    await page.getByText('No key configuration yet').waitFor();
    expect(await page.getByRole('navigation', { name: 'Breadcrumb' }).innerText()).toMatch(/Admin\s*›?\s*Encryption Keys/);
    await ui.screenshot('01-signed-in');

    // sessionStorage: a reload stays signed in; Sign out clears it.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Encryption Keys' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await page.reload();
    await page.getByLabel('API token').waitFor();
    expect(ui.problems).toEqual([]);
  });

  it('a view-only token sees the configuration and the key policy (with Copy), but no Edit; no view permission is explained', async () => {
    const viewer = await open();
    await viewer.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: serve.url });
    await signIn(viewer, await token(['conversation:encryptionKey:view']));
    const { page } = viewer;
    await page.getByRole('heading', { name: 'Conversations key configuration' }).waitFor();
    await page.getByText('No key configuration yet').waitFor();
    await page.getByRole('heading', { name: 'Key policy' }).waitFor();
    expect(await page.getByRole('button', { name: /^(Edit|Configure)$/ }).count()).toBe(0);

    // The policy statement, copied exactly as the API gives it.
    const policy = (await http('GET', '/api/v2/conversations/keyconfigurations/keypolicy')).body;
    await page.getByRole('button', { name: 'Copy key policy' }).click();
    await page.getByText('Copied the statements to the clipboard.').waitFor();
    expect(JSON.parse((await page.evaluate('navigator.clipboard.readText()')) as string)).toEqual(policy.statement);
    expect(await page.getByLabel('Key policy statements').innerText()).toContain(orgId);

    await page.getByRole('tab', { name: 'Audit' }).click();
    await page.getByText('Your token lacks audit:log:view').waitFor();
    await viewer.screenshot('02-view-only');

    const auditor = await open();
    await signIn(auditor, await token(['audit:log:view']));
    await auditor.page.getByText('Your token lacks conversation:encryptionKey:view').waitFor();
    expect(await auditor.page.getByRole('heading', { name: 'Key policy' }).count()).toBe(0);
    await auditor.screenshot('02-no-view-permission');
    expect([...viewer.problems, ...auditor.problems]).toEqual([]);
  });

  it('an invalid alias ARN shows the inline error as you type, tied to the box', async () => {
    admin = await open();
    await signIn(admin, adminToken);
    const { page } = admin;
    await page.getByRole('button', { name: 'Configure' }).click();
    const box = aliasBox(page);
    expect(await page.getByLabel('Key Configuration Type').inputValue()).toBe('KmsSymmetric');
    expect(await describedBy(box)).toContain('arn:aws:kms:{region}:{accountId}:alias/{your-alias}');
    expect(await box.getAttribute('aria-invalid')).toBeNull();

    const cases: Array<[string, string]> = [
      [`arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`, 'create an alias'],
      [`arn:aws:kms:${REGION}:12345:alias/contact-center`, 'must be 12 digits'],
      [`arn:aws-eu:kms:${REGION}:${ACCOUNT}:alias/contact-center`, 'not one of aws, aws-us-gov, aws-cn'],
      [`arn:aws:kms:${REGION}:${ACCOUNT}:alias/aws/ebs`, 'AWS managed keys'],
      [`arn:aws:kms:${REGION}:${ACCOUNT}:alias/has space`, '1-256 characters'],
    ];
    for (const [value, message] of cases) {
      await box.fill(value);
      await page.locator('.field-error', { hasText: message }).waitFor();
      expect(await box.getAttribute('aria-invalid')).toBe('true');
      expect(await describedBy(box)).toContain(message);
    }
    await admin.screenshot('03-invalid-arn');

    await box.fill(`arn:aws:kms:${REGION}:${ACCOUNT}:alias/contact-center`);
    await page.locator('.field-error').waitFor({ state: 'detached' });
    expect(await box.getAttribute('aria-invalid')).toBeNull();
  });

  it('Test against a key without the policy shows the failing step and its remediation, and Save is refused in place', async () => {
    const { page } = admin;
    // The demo key the first start created and printed (README walkthrough), with the platform's statement taken out.
    const printed = /Demo customer key \(local KMS, account 111122223333\): (\S+)/.exec(serve.stdout());
    expect(printed?.[1]).toBe(`arn:aws:kms:${REGION}:${ACCOUNT}:alias/demo-customer-key`);
    await kms('put-policy', '--account', ACCOUNT, '--region', REGION, '--key', DEMO_ALIAS, '--no-platform');
    const key = await describeKey(DEMO_ALIAS);
    await aliasBox(page).fill(key.aliasArn);
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    const report = page.getByRole('region', { name: 'Test result' });
    await report.getByText('Test failed at step “Generate data key”').waitFor();
    const step = report.locator('li[data-step="GenerateDataKey"]');
    expect(await step.innerText()).toMatch(/✗\s*Failed:\s*Generate data key\s*\d+ ms/);
    expect(await step.innerText()).toContain(`the key policy must allow account ${PLATFORM_ACCOUNT}`);
    expect(await report.locator('li[data-step="ArnSyntax"]').innerText()).toContain('✓');
    await admin.screenshot('04-test-fails-without-policy');

    await page.getByRole('button', { name: 'Save' }).click();
    await report.getByText('Not saved: the Test failed at step “Generate data key”').waitFor();
    await page.getByText('No key configuration yet').waitFor();
  });

  it('after `convault kms put-policy` the Test passes, and Save stores the configuration', async () => {
    const { page } = admin;
    await kms('put-policy', '--account', ACCOUNT, '--region', REGION, '--key', DEMO_ALIAS, '--allow-org', orgId);
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    const report = page.getByRole('region', { name: 'Test result' });
    await report.getByText('Test passed').waitFor();
    expect(await report.locator('li.step-passed').count()).toBe(6);
    expect(await report.innerText()).toContain(keys[DEMO_ALIAS]!.keyArn);
    await admin.screenshot('05-test-passes');

    const save = page.getByRole('button', { name: 'Save' });
    await save.click();
    await savedVersion(page, 1);
    await page.getByRole('status').filter({ hasText: 'Saved: version 1 is in effect.' }).waitFor();
    // Back on Edit, for keyboard users.
    await waitForFocus(page.getByRole('button', { name: 'Edit' }));
    expect(await summaryField(page, 'type').innerText()).toBe('AWS KMS Symmetric');
    expect(await summaryField(page, 'url').innerText()).toBe(keys[DEMO_ALIAS]!.aliasArn);
    expect(await summaryField(page, 'keyArn').innerText()).toBe(keys[DEMO_ALIAS]!.keyArn);
    expect(await summaryField(page, 'updated').innerText()).toContain('admin');
    await summaryField(page, 'health').locator('.badge').waitFor();
    expect(await aliasBox(page).count()).toBe(0);
    await admin.screenshot('05-saved');
  });

  it('a Save based on a stale version says it was changed by someone else, and Reload shows the change', async () => {
    const { page } = admin;
    await page.getByRole('button', { name: 'Edit' }).click();
    const config = (await http('GET', '/api/v2/conversations/keyconfigurations')).body.entities[0];
    const other = await http('PUT', `/api/v2/conversations/keyconfigurations/${config.id}`, { keyConfigurationType: 'KmsSymmetric', url: config.url, version: config.version });
    expect(other.status).toBe(200);

    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('This key configuration was changed by someone else').waitFor();
    await admin.screenshot('06-conflict');
    await page.getByRole('button', { name: 'Reload' }).click();
    await savedVersion(page, other.body.version);
  });

  it('rotate to a second key: usage shows both keys, Rewrap reaches 100 % and the old key is safe to retire', async () => {
    const { page } = admin;
    await writeSecuredData(12, 'first-key');
    const second = await createKey(SECOND_ALIAS, true);
    const before = (await http('GET', '/api/v2/conversations/keyconfigurations')).body.entities[0];

    await page.getByRole('button', { name: 'Edit' }).click();
    await aliasBox(page).fill(second.aliasArn);
    await page.getByRole('button', { name: 'Save' }).click();
    await savedVersion(page, before.version + 1);
    expect(await summaryField(page, 'keyArn').innerText()).toBe(second.keyArn);
    await writeSecuredData(12, 'second-key');

    await page.getByRole('button', { name: 'Refresh key usage' }).click();
    const oldRow = page.locator(`tr[data-key-arn="${keys[DEMO_ALIAS]!.keyArn}"]`);
    const newRow = page.locator(`tr[data-key-arn="${second.keyArn}"]`);
    await Promise.all([oldRow.waitFor(), newRow.waitFor()]);
    expect(await page.locator('tr[data-key-arn]').count()).toBe(2);
    expect(await newRow.innerText()).toContain('Current');
    expect(await oldRow.innerText()).not.toContain('Current');
    expect(await oldRow.innerText()).toContain('In use');
    expect(await oldRow.innerText()).toContain(`saved as ${DEMO_ALIAS}`);
    expect(await newRow.innerText()).toContain(`saved as ${SECOND_ALIAS}`);
    await admin.screenshot('07-usage-two-keys');

    await page.getByRole('button', { name: 'Rewrap to current key' }).click();
    await page.getByRole('progressbar', { name: 'Rewrap progress' }).waitFor();
    await page.locator('[data-job-state="succeeded"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('.job-counts').innerText()).toMatch(/^100 %/);
    expect(await page.getByRole('progressbar', { name: 'Rewrap progress' }).getAttribute('value')).toBe('100');
    await oldRow.getByText('Safe to retire').waitFor();
    expect(await newRow.innerText()).not.toContain('Safe to retire');
    expect(await page.getByRole('button', { name: 'Rewrap to current key' }).isDisabled()).toBe(true);

    // Nothing was lost: data written under the first key still reads.
    const read = await http('GET', `/api/v2/conversations/${conversations[0]}/secureddata`);
    expect(read.status).toBe(200);
    expect(read.body.data.card).toBe('4111111111111111');

    // The health probe, on demand: the new key answers the round trip.
    await page.getByRole('button', { name: /^Check now/ }).click();
    await summaryField(page, 'health').getByText('Healthy').waitFor();

    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    const shot = await admin.screenshot('07-rewrapped');
    if (process.env.CONVAULT_UPDATE_DOCS_SCREENSHOT) {
      fs.mkdirSync(path.dirname(DOCS_IMAGE), { recursive: true });
      await page.setViewportSize(DESKTOP);
      await page.screenshot({ path: DOCS_IMAGE, fullPage: true });
    }
    expect(fs.statSync(shot).size).toBeGreaterThan(0);
  });

  it('choosing None asks for confirmation, explains what happens to existing data, and saves', async () => {
    const { page } = admin;
    const before = (await http('GET', '/api/v2/conversations/keyconfigurations')).body.entities[0];
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Key Configuration Type').selectOption({ label: 'None' });
    expect(await aliasBox(page).count()).toBe(0);
    await page.getByText("new secured data is protected by the platform's own key").waitFor();

    await page.getByRole('button', { name: 'Save' }).click();
    const dialog = page.getByRole('dialog', { name: 'Stop using your key for new data?' });
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain('Data already written under your key');
    expect(await dialog.innerText()).toContain(keys[SECOND_ALIAS]!.aliasArn);
    await admin.screenshot('08-none-confirmation');

    // The safe choice has the focus; Escape keeps the key and saves nothing.
    await waitForFocus(dialog.getByRole('button', { name: 'Keep my key' }));
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await http('GET', '/api/v2/conversations/keyconfigurations')).body.entities[0].version).toBe(before.version);

    await page.getByRole('button', { name: 'Save' }).click();
    await dialog.getByRole('button', { name: 'Switch to None' }).click();
    await savedVersion(page, before.version + 1);
    expect(await summaryField(page, 'type').innerText()).toBe('None (platform-managed key)');
    expect(await summaryField(page, 'url').innerText()).toBe('—');
    await admin.screenshot('08-none-saved');
  });

  it('the Audit tab lists these events newest first, filters by action, and loads more', async () => {
    const { page } = admin;
    await page.getByRole('tab', { name: 'Audit' }).click();
    const rows = page.locator('tr[data-action]');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(25);
    const times = await attributes(page.locator('tr[data-action] time'), 'datetime');
    expect(times).toEqual([...times].sort().reverse());

    await page.getByRole('button', { name: 'Load more' }).click();
    await page.locator('tr[data-action]').nth(25).waitFor();
    const actions = await attributes(rows, 'data-action');
    expect(actions).toEqual(expect.arrayContaining(['keyconfig.none', 'keyconfig.save', 'keyconfig.create', 'keyconfig.test', 'secureddata.write']));
    expect(actions.some((a) => a.startsWith('lifecycle.rewrap.'))).toBe(true);

    await page.getByLabel('Action').fill('keyconfig.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('Audit events for keyconfig.*, newest first').waitFor();
    const filtered = await attributes(rows, 'data-action');
    expect(filtered.length).toBeGreaterThan(0);
    expect(filtered.every((a) => a.startsWith('keyconfig.'))).toBe(true);
    expect(filtered[0]).toBe('keyconfig.none');
    expect(filtered).toEqual(expect.arrayContaining(['keyconfig.test', 'keyconfig.create', 'keyconfig.save']));
    await admin.screenshot('09-audit');
    expect(admin.problems).toEqual([]);
  });

  it('renders on a phone (390×844) without horizontal scrolling', async () => {
    const phone = await open(PHONE);
    await signIn(phone, adminToken);
    const { page } = phone;
    await page.getByRole('heading', { name: 'Key usage' }).waitFor();
    await page.locator('tr[data-key-arn]').first().waitFor();
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    // Key usage: every key's Status is on screen, inside the viewport, without scrolling the table sideways.
    const statusCells = page.locator('tr[data-key-arn] td[data-label="Status"]');
    expect(await statusCells.count()).toBeGreaterThanOrEqual(2);
    for (const cell of await statusCells.all()) {
      await cell.scrollIntoViewIfNeeded();
      expect(await cell.isVisible()).toBe(true);
      expect(await cell.innerText()).toMatch(/^(Current|In use|Safe to retire|Unusable)/);
      const box = (await cell.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);
    }
    const usageWrap = page.locator('.table-wrap').filter({ has: page.locator('.usage-table') });
    expect(await usageWrap.evaluate((el: any) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
    await phone.screenshot('10-phone-conversations');

    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Key Configuration Type').selectOption('KmsSymmetric');
    await aliasBox(page).fill(`arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`);
    await page.locator('.field-error').waitFor();
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    await phone.screenshot('10-phone-edit');

    await page.getByRole('tab', { name: 'Audit' }).click();
    await page.locator('tr[data-action]').first().waitFor();
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    await phone.screenshot('10-phone-audit');
    expect(phone.problems).toEqual([]);
  });
});
