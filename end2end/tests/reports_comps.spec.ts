import { readFileSync } from 'fs';
import { expect, test } from '@playwright/test';
import { ANALYST, hydrated, signIn } from './helpers';

const BROKER_TEXT = `Comparable sales, Q1 2026 broker package:

1. Bayview Commons, 40 Bay St, Tampa, FL — sold March 2025 for $24,500,000; 98,000 SF; 6.1% cap rate. Buyer: Crane Capital; Seller: Bay LLC.

2. Palm Court, 12 Palm Ave, Tampa, FL — sold 2024-11-15 for $18.2M, 70,000 square feet, 6.4% cap. Buyer: Harbor REIT.

3. Gulf Tower, 9 Gulf Blvd, Clearwater, FL — sold in January 2025 for $31,000,000, 100,000 SF.`;

test('an analyst extracts three comps, edits one, deletes one, and generates a memo', async ({ page }) => {
  await signIn(page, ANALYST);
  await page.getByRole('link', { name: 'New deal' }).click();
  await page.getByLabel('Name').fill(`Tampa Office Portfolio ${Date.now()}`);
  await page.getByLabel('Asking price (USD)').fill('26M');
  await page.getByRole('button', { name: 'Create deal' }).click();
  await expect(page.getByTestId('deal-name')).toContainText('Tampa Office Portfolio');
  await hydrated(page);

  await page.getByRole('tab', { name: 'Sales comps' }).click();
  await page.getByLabel('Broker or offering-memorandum text').fill(BROKER_TEXT);
  await page.getByRole('button', { name: 'Extract' }).click();
  await expect(page.getByTestId('extract-result')).toHaveText('3 sales added.');
  const rows = page.getByTestId('comp-row');
  await expect(rows).toHaveCount(3);
  await expect(rows.filter({ hasText: 'Bayview Commons' })).toContainText('$24,500,000');
  await expect(rows.filter({ hasText: 'Bayview Commons' })).toContainText('$250.00');

  // The summary row and the CSV of the rows.
  await expect(page.getByTestId('comps-summary')).toContainText('3 sales');
  await expect(page.getByTestId('comps-summary')).toContainText('average / median');
  const download = page.waitForEvent('download');
  await page.getByTestId('comps-csv').click();
  const csv = await (await download).path();
  const text = readFileSync(csv, 'utf8');
  expect(text.trim().split('\r\n')).toHaveLength(4);
  expect(text).toContain('"Bayview Commons"');

  // Edit Palm Court's cap rate; a bad date first: refused, and nothing typed is lost.
  await rows.filter({ hasText: 'Palm Court' }).getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Cap rate (%)').fill('6.75');
  await page.getByLabel('Sale date').fill('2025-13-45');
  await page.getByRole('button', { name: 'Save sale' }).click();
  await expect(page.locator('.edit-comp [role=alert]')).toBeVisible();
  await expect(page.getByLabel('Cap rate (%)')).toHaveValue('6.75');
  await expect(page.getByLabel('Sale date')).toHaveValue('2025-13-45');
  await page.getByLabel('Sale date').fill('2025-03-01');
  await page.getByRole('button', { name: 'Save sale' }).click();
  await expect(rows.filter({ hasText: 'Palm Court' })).toContainText('6.75%');
  await expect(page.getByRole('button', { name: 'Save sale' })).toHaveCount(0);

  // Delete Gulf Tower (an undo is offered; not taken here).
  await rows.filter({ hasText: 'Gulf Tower' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('undo-delete')).toContainText('Deleted Gulf Tower.');
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: 'Gulf Tower' })).toHaveCount(0);

  await page.getByRole('tab', { name: 'Report' }).click();
  await page.getByRole('button', { name: 'Generate memo' }).click();
  const memo = page.getByTestId('memo');
  await expect(memo.getByRole('heading', { name: 'Summary', level: 2 })).toBeVisible();
  await expect(memo.getByRole('heading', { name: 'Recommendation', level: 2 })).toBeVisible();
  await expect(memo.locator('table')).toContainText('Palm Court');
  await expect(page.getByRole('button', { name: /^v1 · / })).toBeVisible();
});
