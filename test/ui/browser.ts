import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';

/** Debian's Chromium, headless (.ci/run installs the `chromium` package when it is missing). */
export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

export const RESULTS_DIR = path.resolve('test-results');
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** A fresh browser (its own temporary profile). */
export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface UiPage {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and Content-Security-Policy violations seen so far. */
  problems: string[];
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

/** A new browser context (empty sessionStorage) on the server's UI. */
export async function openUi(browser: Browser, baseUrl: string, viewport = DESKTOP): Promise<UiPage> {
  const context = await browser.newContext({ viewport, baseURL: baseUrl });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`);
  });
  await page.goto('/');
  return {
    context,
    page,
    problems,
    async screenshot(name) {
      fs.mkdirSync(RESULTS_DIR, { recursive: true });
      const file = path.join(RESULTS_DIR, `ui-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    close: () => context.close(),
  };
}

/** Signs in through the form, as a user does, and waits for the page. */
export async function signIn(ui: UiPage, token: string): Promise<void> {
  const { page } = ui;
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Encryption Keys' }).waitFor();
}

/** How many pixels the page is wider than the viewport (0 or less: no horizontal scrolling). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
}

// The test code is compiled without the DOM library (tsconfig.json): page-side callbacks use `any`.

/** Whether the element has the keyboard focus. */
export async function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((el: any) => el === el.ownerDocument.activeElement);
}

/** Waits until the element has the keyboard focus (focus may move a frame after a render). */
export async function waitForFocus(locator: Locator, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await isFocused(locator))) {
    if (Date.now() > until) throw new Error(`${locator} never got the focus`);
    await locator.page().waitForTimeout(50);
  }
}

/** One attribute of every element the locator matches, in document order. */
export async function attributes(locator: Locator, name: string): Promise<string[]> {
  return locator.evaluateAll((els: any[], attr: string) => els.map((el) => el.getAttribute(attr) as string), name);
}
