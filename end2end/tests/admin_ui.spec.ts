import { expect, Page, test } from '@playwright/test';
import { ADMIN, ANALYST, hydrated, signIn } from './helpers';

/** The deals list's column header `name` (its sort button's text). */
const header = (page: Page, name: string) => page.getByRole('columnheader', { name, exact: true });

/** The asking prices of the listed deals, top to bottom, in dollars (null: none). */
async function listedPrices(page: Page): Promise<(number | null)[]> {
  const cells = await page.getByTestId('deal-row').locator('td:nth-child(4)').allTextContents();
  return cells.map((text) => (text.trim() === '—' ? null : Number(text.replace(/[$,]/g, ''))));
}

test('an analyst searches the deals as they type, the search survives a reload, and the headers sort', async ({ page }) => {
  await signIn(page, ANALYST);
  await page.goto('/deals');
  await hydrated(page);
  const search = page.getByRole('searchbox', { name: 'Search deals' });
  const rows = page.getByTestId('deal-row');

  // As you type, in any case; the URL keeps the search.
  await search.fill('maple');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Maple Grove Apartments');
  await expect(page).toHaveURL(/\/deals\?q=maple$/);
  await page.reload();
  await hydrated(page);
  await expect(search).toHaveValue('maple');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Maple Grove Apartments');

  // The address counts too, whatever the case.
  await search.fill('BALTIMORE');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Harbor Point Office Tower');
  // Money as money, dates on one line.
  await expect(rows.first().locator('td').nth(3)).toHaveText('$86,500,000');
  await expect(rows.first().locator('td').nth(5)).toHaveClass(/\bnowrap\b/);
  await expect(rows.first().locator('td').nth(5)).toHaveText(/^\d{4}-\d{2}-\d{2}$/);

  // Nothing found: said, with the search quoted as text (never markup).
  await search.fill('<b>nowhere</b>');
  await expect(rows).toHaveCount(0);
  await expect(page.getByTestId('no-deals-match')).toHaveText('No deals match “<b>nowhere</b>”.');
  await expect(page.locator('b', { hasText: 'nowhere' })).toHaveCount(0);

  // Back to every deal; most recently changed first until a header is pressed.
  await search.fill('');
  await expect(page).toHaveURL(/\/deals$/);
  await expect(page.getByTestId('no-deals-match')).toHaveCount(0);
  await expect(rows).not.toHaveCount(0);
  await expect(header(page, 'Updated')).toHaveAttribute('aria-sort', 'descending');
  await expect(header(page, 'Asking price')).toHaveAttribute('aria-sort', 'none');

  // By asking price: low to high, then high to low; deals without a price last.
  const pricesInOrder = async (direction: 1 | -1) => {
    await expect(async () => {
      const prices = await listedPrices(page);
      const known = prices.filter((p): p is number => p !== null);
      expect(prices.slice(0, known.length)).toEqual(known);
      expect(known).toEqual([...known].sort((a, b) => direction * (a - b)));
    }).toPass();
  };
  await header(page, 'Asking price').getByRole('button').click();
  await expect(header(page, 'Asking price')).toHaveAttribute('aria-sort', 'ascending');
  await expect(header(page, 'Updated')).toHaveAttribute('aria-sort', 'none');
  await pricesInOrder(1);
  await header(page, 'Asking price').getByRole('button').click();
  await expect(header(page, 'Asking price')).toHaveAttribute('aria-sort', 'descending');
  await pricesInOrder(-1);

  // By name, in any case.
  await header(page, 'Deal').getByRole('button').click();
  await expect(header(page, 'Deal')).toHaveAttribute('aria-sort', 'ascending');
  await expect(async () => {
    const names = (await rows.locator('td:nth-child(1)').allTextContents()).map((n) => n.toLowerCase());
    expect(names).toEqual([...names].sort());
  }).toPass();

  // A search and a sort together: the order holds within what was found.
  await search.fill('office');
  await expect(rows.first()).toContainText('Harbor Point Office Tower');
  await expect(header(page, 'Deal')).toHaveAttribute('aria-sort', 'ascending');
});

test("a failed row action on /admin/users is said in that account's row and cleared by its next success", async ({ page }) => {
  await signIn(page, ADMIN);
  await page.goto('/admin/users');
  await hydrated(page);

  // A fresh account to act on.
  const email = `row.outcome.${Date.now()}@dealdesk.test`;
  const form = page.getByTestId('create-user');
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill('a-long-password');
  await form.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByTestId('user-added')).toBeVisible();

  const account = page.getByTestId('account').filter({ hasText: email });
  await expect(account.getByTestId('user-row')).toHaveCount(1);
  await account.getByText('Manage').click();
  await account.getByLabel('Daily budget', { exact: true }).fill('lots');
  await account.getByRole('button', { name: 'Set daily budget' }).click();

  // The error is in this account's group, right below its row — and nowhere else.
  const alert = account.getByRole('alert');
  await expect(alert).toContainText('A budget is a whole number of tokens');
  await expect(account.getByTestId('row-outcome')).toHaveCount(1);
  await expect(page.getByRole('alert')).toHaveCount(1);
  const analystRow = page.getByTestId('account').filter({ hasText: ANALYST.email });
  await expect(analystRow.getByTestId('row-outcome')).toHaveCount(0);
  // The row it concerns comes just before it.
  await expect(account.locator('tr[data-testid="user-row"] + tr[data-testid="row-outcome"]')).toHaveCount(1);

  // The account's next action succeeds: the error goes, a short word takes its place.
  await account.getByLabel('Daily budget', { exact: true }).fill('250000');
  await account.getByRole('button', { name: 'Set daily budget' }).click();
  await expect(account.getByRole('alert')).toHaveCount(0);
  await expect(account.getByRole('status')).toHaveText('Daily budget saved.');
  await expect(account.getByTestId('user-row')).toContainText('250,000');
  await expect(page.getByRole('alert')).toHaveCount(0);
});

test('the usage dashboard states what is left of the firm budget this month', async ({ page }) => {
  await signIn(page, ADMIN);
  await page.getByRole('link', { name: 'Usage', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Token usage' })).toBeVisible();
  const card = page.getByTestId('firm-budget');
  await expect(card.locator('dt')).toHaveText('Remaining firm budget');
  // Leptos.toml sets no monthly cap.
  await expect(card.locator('dd')).toHaveText('No firm cap set');
  await expect(card).toContainText(/\$[\d,]+\.\d\d spent in \d{4}-\d{2}/);
  // The month's projection stays beside it.
  await expect(page.getByTestId('projection')).toContainText(/Projected for \d{4}-\d{2}/);

  await page.goto('/admin/limits');
  await hydrated(page);
  await page.getByLabel('Spend per month (USD)').fill('1000000');
  await page.getByRole('button', { name: 'Save limits' }).click();
  await expect(page.getByTestId('limits-saved')).toBeVisible();
  try {
    await page.goto('/admin/tokens');
    await hydrated(page);
    await expect(card.locator('dd')).toHaveText(/^\$[\d,]+\.\d\d of \$1,000,000\.00 left$/);
    await expect(card.getByRole('progressbar', { name: 'Firm spend this month against its cap' })).toBeVisible();
  } finally {
    // A firm cap would bind every later test's calls: back to the configured limits.
    await page.goto('/admin/limits');
    await hydrated(page);
    await page.getByRole('button', { name: 'Go back to the limits in Leptos.toml' }).click();
    await expect(page.getByTestId('limits-saved')).toContainText('Back to the limits in Leptos.toml');
  }
});

test('a deal that does not exist shows only the notice and the way back, no tabs', async ({ page }) => {
  await signIn(page, ANALYST);
  const response = await page.goto('/deals/999999');
  expect(response?.status()).toBe(404);
  await hydrated(page);
  await expect(page.getByRole('alert')).toContainText('That deal does not exist');
  await expect(page.getByRole('tablist')).toHaveCount(0);
  await expect(page.getByRole('tab')).toHaveCount(0);
  await expect(page.getByTestId('tab-panel')).toHaveCount(0);
  await expect(page.getByTestId('meters')).toHaveCount(0);
  await page.getByRole('link', { name: 'Back to the deals' }).click();
  await expect(page).toHaveURL(/\/deals$/);
  await expect(page.getByRole('heading', { name: 'Deals' })).toBeVisible();
});
