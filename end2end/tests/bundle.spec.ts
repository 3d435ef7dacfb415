import { expect, Page, test } from '@playwright/test';
import { ANALYST, hydrated, signIn } from './helpers';

/** The wasm files the page has asked for so far, by name (`/pkg/…` stripped). */
function wasmRequests(page: Page): string[] {
  const names: string[] = [];
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path.endsWith('.wasm')) names.push(path.replace(/^\/pkg\//, ''));
  });
  return names;
}

/** Whether a file is the split point `name` (app/src/pages/routes.rs, pages/deal.rs). */
const splitOf = (name: string) => (file: string) => file === `split_${name}.wasm`;

// The pages are lazy routes: the browser fetches the main module and the chunks of the
// pages it shows, and the deal page's Report and Sales comps tabs when they are opened.
test('a browser fetches the chunks of the pages it shows: an analyst never loads an admin page or a tab not opened', async ({ page }) => {
  const fetched = wasmRequests(page);
  await signIn(page, ANALYST);
  expect(fetched).toContain('dealdesk_bg.wasm');
  expect(fetched.some(splitOf('deals_pages'))).toBe(true);
  expect(fetched.some(splitOf('deal_page'))).toBe(false);

  await page.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
  await expect(page.getByTestId('deal-name')).toHaveText('Harbor Point Office Tower');
  await expect(page.getByRole('tab', { name: 'Chat' })).toHaveAttribute('aria-selected', 'true');
  expect(fetched.some(splitOf('deal_page'))).toBe(true);
  expect(fetched.some(splitOf('report_tab'))).toBe(false);
  expect(fetched.some(splitOf('comps_tab'))).toBe(false);

  // The Report tab's code arrives when the tab is opened, and the tab works.
  await page.getByRole('tab', { name: 'Report' }).click();
  await expect(page.getByTestId('tab-panel').getByRole('button', { name: 'Generate memo' })).toBeVisible();
  expect(fetched.some(splitOf('report_tab'))).toBe(true);
  await page.getByRole('tab', { name: 'Sales comps' }).click();
  await expect(page.getByTestId('tab-panel').getByLabel('Broker or offering-memorandum text')).toBeVisible();
  expect(fetched.some(splitOf('comps_tab'))).toBe(true);

  // A reload of the deal page hydrates it, with its chunks preloaded by the server.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('deal-name')).toHaveText('Harbor Point Office Tower');
  await expect(page.locator('head link[rel="preload"][href="/pkg/split_deal_page.wasm"]')).toHaveCount(1);
  expect(fetched.filter(splitOf('admin_pages'))).toEqual([]);
});

test('a tab whose code is still on its way says so, then shows the tab', async ({ page }) => {
  await signIn(page, ANALYST);
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/pkg/split_report_tab.wasm', async (route) => {
    await held;
    await route.continue();
  });
  await page.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
  await expect(page.getByTestId('deal-name')).toHaveText('Harbor Point Office Tower');

  await page.getByRole('tab', { name: 'Report' }).click();
  const panel = page.getByTestId('tab-panel');
  await expect(panel.getByRole('status')).toHaveText('Loading the tab…');
  release();
  await expect(panel.getByRole('button', { name: 'Generate memo' })).toBeVisible();
  await expect(panel.getByText('Loading the tab…')).toHaveCount(0);
});

// A chunk that does not arrive (a dropped connection) must not stop the app: the tab
// says so and fetches it again on request, and the rest of the page keeps working.
test('a tab whose code does not arrive says so, and Try again loads it', async ({ page }) => {
  await signIn(page, ANALYST);
  await page.route('**/pkg/split_report_tab.wasm', (route) => route.abort('connectionfailed'));
  await page.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
  await expect(page.getByTestId('deal-name')).toHaveText('Harbor Point Office Tower');

  await page.getByRole('tab', { name: 'Report' }).click();
  const panel = page.getByTestId('tab-panel');
  await expect(panel.getByRole('alert')).toContainText('This tab could not be loaded');
  // The app still runs: another tab opens.
  await page.getByRole('tab', { name: 'Chat' }).click();
  await expect(panel.getByLabel('Message')).toBeVisible();

  // Each opening fetches anew: still failing, then arrived.
  await page.getByRole('tab', { name: 'Report' }).click();
  await expect(panel.getByRole('alert')).toContainText('This tab could not be loaded');
  await page.unroute('**/pkg/split_report_tab.wasm');
  await panel.getByRole('button', { name: 'Try again' }).click();
  await expect(panel.getByRole('button', { name: 'Generate memo' })).toBeVisible();
  await expect(panel.getByTestId('chunk-unavailable')).toHaveCount(0);
});

test('a page whose code does not arrive says so, and its reload link shows the page', async ({ page }) => {
  await signIn(page, ANALYST);
  await page.route('**/pkg/split_deal_page.wasm', (route) => route.abort('connectionfailed'));
  await page.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
  const notice = page.getByTestId('chunk-unavailable');
  await expect(notice).toContainText('This page could not be loaded');

  await page.unroute('**/pkg/split_deal_page.wasm');
  await notice.getByRole('link', { name: 'Reload the page' }).click();
  await hydrated(page);
  await expect(page.getByTestId('deal-name')).toHaveText('Harbor Point Office Tower');
  await expect(page.getByRole('tab', { name: 'Chat' })).toHaveAttribute('aria-selected', 'true');
});
