import { expect, test } from '@playwright/test';
import { ADMIN, LIMITED, hydrated, signIn } from './helpers';

test("an admin sets a user's monthly budget and the firm's daily cap; the analyst sees both in the chat tab", async ({ browser }) => {
  const admin = await (await browser.newContext()).newPage();
  await signIn(admin, ADMIN);

  // The analyst's monthly budget: one cent.
  await admin.goto('/admin/users');
  await hydrated(admin);
  const row = admin.getByTestId('user-row').filter({ hasText: LIMITED.email });
  await row.getByText('Manage').click();
  await row.getByLabel('Monthly budget (USD)').fill('0.01');
  await row.getByRole('button', { name: 'Set monthly budget' }).click();
  await expect(admin.getByTestId('user-row').filter({ hasText: LIMITED.email })).toContainText('$0.01');

  // The firm's daily spending cap.
  await admin.goto('/admin/limits');
  await hydrated(admin);
  await admin.getByLabel('Spend per day (USD)').fill('1000');
  await admin.getByRole('button', { name: 'Save limits' }).click();
  await expect(admin.getByTestId('limits-saved')).toBeVisible();

  try {
    const analyst = await (await browser.newContext()).newPage();
    await signIn(analyst, LIMITED);
    await analyst.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
    await hydrated(analyst);
    await expect(analyst.getByTestId('meter-monthly')).toContainText('$0.00 / $0.01');
    await expect(analyst.getByTestId('meter-firm-day-usd')).toContainText('/ $1,000.00');
    await expect(analyst.getByRole('progressbar', { name: 'Firm spend today' })).toBeVisible();
    // A cent buys the input and under a thousand reply tokens: the reply will be limited.
    await analyst.getByLabel('Message').fill('What is the cap rate?');
    const preflight = analyst.getByTestId('preflight');
    await expect(preflight).toContainText('the reply will be limited to');
    await expect(preflight).toContainText('by your monthly budget');
    await expect(analyst.getByTestId('send')).toBeEnabled();
    await analyst.getByTestId('send').click();
    await expect(analyst.getByTestId('reply-limited')).toContainText('your monthly budget');
  } finally {
    // The firm's cap binds every later test's calls: back to the configured limits.
    await admin.goto('/admin/limits');
    await hydrated(admin);
    await admin.getByRole('button', { name: 'Go back to the limits in Leptos.toml' }).click();
    await expect(admin.getByTestId('limits-saved')).toContainText('Back to the limits in Leptos.toml');
  }

  // Every change is in the audit log.
  await admin.goto('/admin/audit');
  await hydrated(admin);
  const log = admin.getByTestId('audit-log');
  await expect(log).toContainText(`user ${LIMITED.email}: monthly budget`);
  await expect(log).toContainText('limits.firm_daily_usd');
});
