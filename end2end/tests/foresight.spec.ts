import { expect, Page, test } from '@playwright/test';
import { ADMIN, FORESIGHT, hydrated, signIn } from './helpers';

/** "$1,234.56" → 123456 (cents). */
function cents(text: string): number {
  const match = text.match(/\$([\d,]+)\.(\d\d)/);
  if (!match) throw new Error(`no amount in ${text}`);
  return Number(match[1].replace(/,/g, '')) * 100 + Number(match[2]);
}

async function mySpend(page: Page): Promise<number> {
  await page.goto('/my-usage');
  await hydrated(page);
  return cents(await page.getByTestId('my-month').locator('dd').first().innerText());
}

test('my usage shows the month, its projection and the limits', async ({ page }) => {
  await signIn(page, FORESIGHT);
  await page.getByRole('link', { name: 'My usage' }).click();
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'My usage' })).toBeVisible();
  await expect(page.getByTestId('my-month')).toContainText('Spent in');
  // A week of seeded calls: a pace, and where it leads by the end of the month.
  await expect(page.getByTestId('my-projection')).toContainText(/At the pace of the last 7 days \(\$[\d,.]+ and [\d,]+ tokens a day\): about \$[\d,.]+ and [\d,]+ tokens by the end of the month\./);
  const limits = page.getByTestId('my-limits');
  await expect(limits.getByTestId('meter-monthly')).toContainText('/ $50.00');
  await expect(limits.getByTestId('meter-monthly').getByTestId('forecast')).toBeVisible();
  await expect(limits).toContainText('resets');
});

test('the pre-flight names the cheaper model, the analyst overrides it, and an admin acknowledges the alert', async ({ browser }) => {
  const analyst = await (await browser.newContext()).newPage();
  await signIn(analyst, FORESIGHT);
  const spent = await mySpend(analyst);
  expect(spent).toBeGreaterThan(10);

  // Model choice on for this analyst, with a monthly budget twice what they have spent:
  // half of it left, so the second tier answers.
  const admin = await (await browser.newContext()).newPage();
  await signIn(admin, ADMIN);
  const row = () => admin.getByTestId('user-row').filter({ hasText: FORESIGHT.email });
  const manage = async () => {
    await admin.goto('/admin/users');
    await hydrated(admin);
    await row().getByText('Manage').click();
  };
  await manage();
  await row().getByLabel('Model choice').selectOption('on');
  await row().getByRole('button', { name: 'Set', exact: true }).click();
  await expect(row().getByTestId('model-choice-setting')).toHaveText('on');
  // A cent under twice the spend shown: the spend shown is rounded to the cent, and at
  // exactly twice it the month could stand a fraction of a cent under half, and the
  // call below cost less than that fraction (seen on 2026-12-05).
  const budget = ((spent * 2 - 1) / 100).toFixed(2);
  await manage();
  await row().getByLabel('Monthly budget (USD)').fill(budget);
  await row().getByRole('button', { name: 'Set monthly budget' }).click();
  await expect(row().getByTestId('monthly-budget')).toHaveText(`$${budget}`);

  await analyst.goto('/');
  await analyst.getByRole('link', { name: 'Harbor Point Office Tower' }).click();
  await hydrated(analyst);
  await analyst.getByLabel('Message').fill('Which risks matter most here?');
  const choice = analyst.getByTestId('model-choice');
  await expect(choice).toContainText('Answered by claude-sonnet-5-5: your monthly budget has 50% left.');
  await expect(analyst.getByTestId('send')).toBeEnabled();
  // The analyst asks for the best model for this one send.
  await choice.getByTestId('best-model').check();
  await expect(choice).toContainText('Answered by claude-opus-5-5: your choice for this send.');
  await analyst.getByTestId('send').click();
  const replies = analyst.getByTestId('messages').locator('.message.assistant .bubble');
  await expect(replies).toHaveCount(1);
  await expect(replies.first()).toContainText('risks');
  // The box is empty again and the next send is back to the budget's choice.
  await analyst.getByLabel('Message').fill('And the exit?');
  await expect(choice).toContainText('Answered by claude-sonnet-5-5');
  await expect(choice.getByTestId('best-model')).not.toBeChecked();

  // Past half the monthly budget: one alert, which the admin acknowledges.
  const alert = admin.getByTestId('alert-row').filter({ hasText: `${FORESIGHT.email}'s monthly budget: 50% used` });
  await expect(async () => {
    await admin.goto('/admin/alerts');
    await hydrated(admin);
    await expect(alert).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await alert.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(alert).toContainText(`${ADMIN.email},`);
  await expect(alert.getByRole('button', { name: 'Acknowledge' })).toHaveCount(0);

  // The analyst sees it among their own.
  await analyst.goto('/my-usage');
  await hydrated(analyst);
  await expect(analyst.getByTestId('my-alerts')).toContainText('monthly budget: 50% used');

  // The firm's month on the dashboard: the projection, and the pace drawn on the chart.
  await admin.goto('/admin/tokens?range=7');
  await hydrated(admin);
  await admin.getByRole('link', { name: 'This month' }).click();
  await expect(admin).toHaveURL(/range=month/);
  await expect(admin.getByRole('link', { name: 'This month' })).toHaveAttribute('aria-current', 'page');
  await expect(admin.getByTestId('projection')).toContainText(/Projected for \d{4}-\d{2}/);
  await expect(admin.getByTestId('pace-line')).toHaveCount(1);
  // Spend against budget: this analyst's month against the budget just set, as a bar.
  const mine = admin.getByTestId('budget-users').locator('li').filter({ hasText: FORESIGHT.email });
  await expect(mine).toContainText(`of $${budget}`);
  await expect(mine.getByRole('progressbar')).toBeVisible();
  await expect(admin.getByTestId('budget-deals')).toContainText('Harbor Point Office Tower');
});
