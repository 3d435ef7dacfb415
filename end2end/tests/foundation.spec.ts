import { expect, test } from '@playwright/test';
import { ADMIN, ANALYST, hydrated, signIn } from './helpers';

test('an analyst signs in, creates a deal, opens it, sees the tabs and signs out', async ({ page }) => {
  await signIn(page, ANALYST);
  await expect(page.getByTestId('current-user')).toContainText(ANALYST.email);

  await page.getByRole('link', { name: 'New deal' }).click();
  await expect(page.getByRole('heading', { name: 'New deal' })).toBeVisible();
  const name = `Lakeside Retail Center ${Date.now()}`;
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Address').fill('14 Lakeside Ave, Madison, WI');
  await page.getByLabel('Property type').selectOption('Retail');
  await page.getByLabel('Asking price (USD)').fill('18.4M');
  await page.getByLabel('Notes').fill('Grocery-anchored, 92% leased.');
  await page.getByRole('button', { name: 'Create deal' }).click();

  await expect(page.getByTestId('deal-name')).toHaveText(name);
  await expect(page).toHaveURL(/\/deals\/\d+$/);
  await expect(page.getByText('$18,400,000')).toBeVisible();
  for (const tab of ['Chat', 'Report', 'Sales comps']) {
    await expect(page.getByRole('tab', { name: tab })).toBeVisible();
  }

  // The list shows the new deal and leads back to it.
  await page.getByRole('link', { name: 'Deals', exact: true }).click();
  await page.getByRole('link', { name }).click();
  await expect(page.getByTestId('deal-name')).toHaveText(name);

  // The edit form shows the price as money, and saving it unchanged keeps it.
  await page.goto(`${new URL(page.url()).pathname}/edit`);
  await hydrated(page);
  await expect(page.getByLabel('Asking price (USD)')).toHaveValue('$18,400,000');
  await page.getByRole('button', { name: /Save/ }).click();
  await expect(page.getByText('$18,400,000')).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/deals');
  await expect(page).toHaveURL(/\/login$/);
});

test('a wrong password shows an error and stays on the sign-in page', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(ANALYST.email);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Email or password is incorrect.');
  await expect(page).toHaveURL(/\/login$/);
});

test('an analyst does not see admin links; an admin does', async ({ page }) => {
  await signIn(page, ANALYST);
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await page.goto('/admin/users');
  await expect(page.getByRole('alert')).toContainText('Only administrators');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await signIn(page, ADMIN);
  await page.getByRole('link', { name: 'Users' }).click();
  await expect(page.getByRole('cell', { name: ANALYST.email })).toBeVisible();
});

test('an admin adds a user: the defaults are stated, the form clears and says so, the list shows spend', async ({ page }) => {
  await signIn(page, ADMIN);
  await page.goto('/admin/users');
  await hydrated(page);
  const form = page.getByTestId('create-user');
  await expect(form.getByLabel('Daily budget (tokens)')).toHaveAttribute('placeholder', 'default: 500,000');
  await expect(form.getByLabel('Monthly budget (USD)')).toHaveAttribute('placeholder', /^default: \$[\d,]+\.\d\d$/);
  const email = `new.analyst.${Date.now()}@dealdesk.test`;
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill('a-long-password');
  await form.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByTestId('user-added')).toBeVisible();
  await expect(page.getByTestId('create-user').getByLabel('Email')).toHaveValue('');
  await expect(page.getByTestId('create-user').getByLabel('Password')).toHaveValue('');
  const row = page.getByTestId('user-row').filter({ hasText: email });
  await expect(row).toContainText('$0.00');
  await expect(row).toContainText('never');
  await expect(page.getByTestId('users')).toContainText('Spent this month');
});

test('the deal page is interactive once hydrated', async ({ page }) => {
  await signIn(page, ANALYST);
  await page.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
  await hydrated(page);
  const panel = page.getByTestId('tab-panel');
  await expect(page.getByRole('tab', { name: 'Chat' })).toHaveAttribute('aria-selected', 'true');
  await page.getByRole('tab', { name: 'Report' }).click();
  await expect(page.getByRole('tab', { name: 'Report' })).toHaveAttribute('aria-selected', 'true');
  await expect(panel.getByRole('button', { name: 'Generate memo' })).toBeVisible();
  await page.getByRole('tab', { name: 'Sales comps' }).click();
  await expect(panel.getByRole('button', { name: 'Extract' })).toBeVisible();
  await page.getByRole('tab', { name: 'Chat' }).click();
  await expect(panel.getByLabel('Message')).toBeVisible();
  // The keyboard: arrows move between tabs (wrapping), focus follows.
  await page.getByRole('tab', { name: 'Chat' }).focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.getByRole('tab', { name: 'Report' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByRole('tab', { name: 'Report' })).toBeFocused();
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await expect(page.getByRole('tab', { name: 'Sales comps' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByRole('tab', { name: 'Sales comps' })).toBeFocused();
  await expect(panel.getByRole('button', { name: 'Extract' })).toBeVisible();
});
