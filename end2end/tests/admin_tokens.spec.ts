import { expect, test } from '@playwright/test';
import { ADMIN, ANALYST, TINY, hydrated, signIn } from './helpers';

test('an admin reads usage on /admin/tokens, changes the range and downloads CSV', async ({ page }) => {
  // Some usage first: an analyst chats once.
  await signIn(page, ANALYST);
  await page.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
  await hydrated(page);
  await page.getByLabel('Message').fill('What is the going-in cap rate?');
  await page.getByTestId('send').click();
  await expect(page.locator('.message.assistant .bubble')).toHaveCount(1);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);

  await signIn(page, ADMIN);
  await page.getByRole('link', { name: 'Usage', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Token usage' })).toBeVisible();
  await expect(page.getByTestId('daily-chart')).toBeVisible();
  for (const table of ['by-user', 'by-deal', 'by-day']) {
    await expect(page.getByTestId(`table-${table}`)).toBeVisible();
  }
  await expect(page.getByTestId('table-by-user')).toContainText(ANALYST.email);
  await expect(page.getByTestId('table-by-deal')).toContainText('Harbor Point Office Tower');
  // This month by default: a bar for each day so far (time.zone is UTC here).
  await expect(page.getByRole('link', { name: 'This month' })).toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('daily-chart').locator('rect')).toHaveCount(new Date().getUTCDate());
  // A readable chart: dated, with both scales named in its legend.
  await expect(page.getByTestId('daily-chart').locator('text.date').first()).toHaveText(/^\d\d-\d\d$/);
  await expect(page.getByTestId('daily-chart').locator('text.dollars').last()).toHaveText(/^\$/);
  await expect(page.locator('.chart figcaption')).toContainText('Tokens per day (left scale)');
  await expect(page.locator('.chart figcaption')).toContainText('Cost per day (right scale)');

  // A user's own daily breakdown.
  await page.getByTestId('table-by-user').getByRole('link', { name: ANALYST.email }).click();
  await expect(page.getByTestId('focus')).toContainText(ANALYST.email);
  await expect(page.getByTestId('table-by-user').locator('tbody tr')).toHaveCount(1);
  await page.getByRole('link', { name: 'Show everyone' }).click();
  await expect(page.getByTestId('focus')).toHaveCount(0);

  await page.getByRole('link', { name: '7 days' }).click();
  await expect(page).toHaveURL(/range=7/);
  await expect(page.getByTestId('daily-chart').locator('rect')).toHaveCount(7);

  const download = page.waitForEvent('download');
  await page.getByTestId('table-by-user').getByRole('link', { name: 'Download CSV' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^usage-by-user-.*\.csv$/);
  const fs = await import('node:fs/promises');
  const csv = await fs.readFile(await file.path(), 'utf8');
  expect(csv.split('\r\n')[0]).toContain('"group","key","label"');
  expect(csv).toContain(ANALYST.email);
});

test('an analyst is refused the usage dashboard', async ({ page }) => {
  await signIn(page, ANALYST);
  await expect(page.getByRole('link', { name: 'Usage', exact: true })).toHaveCount(0);
  const response = await page.goto('/admin/tokens');
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('alert')).toContainText('Only administrators');
});

test('a refused call appears on /admin/tokens, by user, deal and why', async ({ browser }) => {
  // The tiny budget's Send is disabled in the page; a script posting anyway is refused.
  const analyst = await (await browser.newContext()).newPage();
  await signIn(analyst, TINY);
  const href = await analyst.getByRole('link', { name: 'Harbor Point Office Tower' }).getAttribute('href');
  const dealId = href!.split('/').pop()!;
  const response = await analyst.request.post('/api/chat/send', { form: { deal_id: dealId, message: 'What is the cap rate?' } });
  expect(response.status()).toBe(403);
  expect((await response.json()).kind).toBe('daily_limit_reached');

  const admin = await (await browser.newContext()).newPage();
  await signIn(admin, ADMIN);
  await admin.goto('/admin/tokens?range=today');
  await hydrated(admin);
  await expect(admin.getByTestId('refused-total').locator('dd')).not.toHaveText('0');
  const row = admin.getByTestId('table-refused').getByRole('row').filter({ hasText: TINY.email });
  await expect(row).toContainText('Harbor Point Office Tower');
  await expect(row).toContainText('daily limit');
});
