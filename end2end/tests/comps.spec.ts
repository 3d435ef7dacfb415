import { readFileSync } from 'fs';
import { expect, Page, test } from '@playwright/test';
import { ANALYST, hydrated, newDeal, signIn } from './helpers';

// Read by the offline model: a month-only date, a full date, and another month.
const BROKER_TEXT = `Comparable sales:

1. Bayview Commons, 40 Bay St, Tampa, FL — sold March 2025 for $24,500,000; 98,000 SF; 6.1% cap rate. Buyer: Crane Capital; Seller: Bay LLC.

2. Palm Court, 12 Palm Ave, Tampa, FL — sold 2024-11-15 for $18.2M, 70,000 square feet, 6.4% cap. Buyer: Harbor REIT.

3. Gulf Tower, 9 Gulf Blvd, Clearwater, FL — sold in January 2025 for $31,000,000, 100,000 SF.`;

/** Signs in, creates a fresh deal and opens its Sales comps tab. */
async function openCompsOfNewDeal(page: Page, name: string) {
  await signIn(page, ANALYST);
  await newDeal(page, name, '20M');
  await page.getByRole('tab', { name: 'Sales comps' }).click();
}

async function extract(page: Page, text: string, added: string) {
  await page.getByLabel('Broker or offering-memorandum text').fill(text);
  await page.getByRole('button', { name: 'Extract' }).click();
  await expect(page.getByTestId('extract-result')).toHaveText(added);
}

test('an analyst adds a sale by hand; a refused save keeps what was typed', async ({ page }) => {
  await openCompsOfNewDeal(page, 'Hand-entered Comps');
  await expect(page.getByText('No sales comps yet.')).toBeVisible();

  // The button is there before any comp exists; it opens the same form as Edit, empty.
  await page.getByRole('button', { name: 'Add a sale' }).click();
  const form = page.getByTestId('comp-form');
  await expect(form.getByRole('heading', { name: 'Add a sale' })).toBeVisible();
  await expect(form.getByLabel('Property', { exact: true })).toHaveValue('');
  await expect(form.getByLabel('Sale date')).toHaveAttribute('placeholder', 'YYYY-MM-DD or YYYY-MM');

  const typed: [string, string][] = [
    ['Property', 'Harbor Flats'],
    ['Address', '7 Dock St, Tampa, FL'],
    ['Sale date', '2025-03'],
    ['Sale price (USD)', '12,000,000'],
    ['Building size (SF)', '48,000'],
    ['Cap rate (%)', '45'],
    ['Buyer', 'Dock Partners'],
    ['Notes', 'typed in'],
  ];
  for (const [label, value] of typed) {
    await form.getByLabel(label, { exact: true }).fill(value);
  }
  await form.getByRole('button', { name: 'Save sale' }).click();
  await expect(form.getByRole('alert')).toContainText('cap rate');
  for (const [label, value] of typed) {
    await expect(form.getByLabel(label, { exact: true })).toHaveValue(value);
  }
  await expect(page.getByTestId('comp-row')).toHaveCount(0);

  await form.getByLabel('Cap rate (%)', { exact: true }).fill('5.9');
  await form.getByRole('button', { name: 'Save sale' }).click();
  await expect(page.getByTestId('comp-form')).toHaveCount(0);
  const rows = page.getByTestId('comp-row');
  await expect(rows).toHaveCount(1);
  await expect(rows).toContainText('Harbor Flats');
  await expect(rows).toContainText('$12,000,000');
  await expect(rows).toContainText('$250.00');
  await expect(rows).toContainText('5.90%');
  await expect(rows.locator('td.nowrap')).toHaveText('Mar 2025');
  await expect(rows.getByTestId('comp-manual')).toHaveText('added by hand');
  await expect(page.getByTestId('comps-summary')).toContainText('1 sale');
});

test('a deleted sale comes back in its place with Undo', async ({ page }) => {
  await openCompsOfNewDeal(page, 'Undo Comps');
  await extract(page, BROKER_TEXT, '3 sales added.');
  const rows = page.getByTestId('comp-row');
  await expect(rows).toHaveCount(3);
  const before = await rows.allTextContents();

  await rows.filter({ hasText: 'Palm Court' }).getByRole('button', { name: 'Delete' }).click();
  const notice = page.getByTestId('undo-delete');
  await expect(notice).toHaveAttribute('role', 'status');
  await expect(notice).toContainText('Deleted Palm Court.');
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: 'Palm Court' })).toHaveCount(0);
  await expect(page.getByTestId('comps-summary')).toContainText('2 sales');

  await notice.getByRole('button', { name: 'Undo' }).click();
  await expect(notice).toHaveCount(0);
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(1)).toContainText('Palm Court');
  await expect(rows).toHaveText(before);

  // Restored on the server, not only on screen.
  await page.reload();
  await hydrated(page);
  await page.getByRole('tab', { name: 'Sales comps' }).click();
  await expect(rows).toHaveCount(3);
  await expect(rows).toHaveText(before);
});

test('a month-only broker date is shown as a month, a full date as the date', async ({ page }) => {
  await openCompsOfNewDeal(page, 'Month Comps');
  await extract(page, BROKER_TEXT, '3 sales added.');
  const rows = page.getByTestId('comp-row');
  const date = (name: string) => rows.filter({ hasText: name }).locator('td.nowrap');
  await expect(date('Bayview Commons')).toHaveText('Mar 2025');
  await expect(date('Palm Court')).toHaveText('2024-11-15');
  await expect(date('Gulf Tower')).toHaveText('Jan 2025');
  await expect(page.getByTestId('comps-summary').locator('td.nowrap')).toHaveText('2024-11-15 – Mar 2025');

  // The CSV keeps the stored value.
  const download = page.waitForEvent('download');
  await page.getByTestId('comps-csv').click();
  const csv = readFileSync(await (await download).path(), 'utf8');
  expect(csv).toContain('"2025-03"');
  expect(csv).toContain('"2024-11-15"');

  // The edit form shows the month as stored, and saving keeps it a month.
  await rows.filter({ hasText: 'Bayview Commons' }).getByRole('button', { name: 'Edit' }).click();
  const form = page.getByTestId('comp-form');
  await expect(form.getByLabel('Sale date')).toHaveValue('2025-03');
  await form.getByLabel('Buyer', { exact: true }).fill('Crane Capital Partners');
  await form.getByRole('button', { name: 'Save sale' }).click();
  await expect(page.getByTestId('comp-form')).toHaveCount(0);
  await expect(rows.filter({ hasText: 'Bayview Commons' })).toContainText('Crane Capital Partners');
  await expect(date('Bayview Commons')).toHaveText('Mar 2025');
});
