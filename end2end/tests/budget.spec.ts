import { expect, test } from '@playwright/test';
import { ANALYST, TINY, hydrated, signIn } from './helpers';

async function openDeal(page, name: string) {
  await page.getByRole('link', { name }).click();
  await hydrated(page);
  await expect(page.getByTestId('meter-deal')).toBeVisible();
}

test('the send button is disabled while a reply is pending and until 2 seconds after the send', async ({ page }) => {
  await signIn(page, ANALYST);
  await openDeal(page, 'Maple Grove Apartments');
  const send = page.getByTestId('send');
  await page.getByLabel('Message').fill('How should we price an offer?');
  await expect(send).toBeEnabled();
  const sentAt = Date.now();
  await send.click();
  await expect(send).toBeDisabled();
  await expect(page.getByTestId('pending')).toBeVisible();
  await expect(page.locator('.message.assistant .bubble')).toHaveCount(1);
  // The countdown shows while the cooldown runs, even with a new draft ready.
  await page.getByLabel('Message').fill('And the risks?');
  await expect(send).toBeDisabled();
  await expect(send).toHaveText(/Send \(\d\)/);
  await expect(send).toBeEnabled({ timeout: 5_000 });
  const waited = Date.now() - sentAt;
  expect(waited).toBeGreaterThan(1_900);
  expect(waited).toBeLessThan(4_000);
  await expect(send).toHaveText('Send');
});

test('the pre-flight estimate follows the draft', async ({ page }) => {
  await signIn(page, ANALYST);
  await openDeal(page, 'Harbor Point Office Tower');
  const preflight = page.getByTestId('preflight');
  const box = page.getByLabel('Message');
  await expect(preflight).toHaveText('');
  await box.pressSequentially('Cap rate?');
  await expect(preflight).toContainText('input tokens');
  const short = await preflight.textContent();
  const tokens = (text: string | null) => Number((text ?? '').match(/≈ ([\d,]+) input tokens/)![1].replace(/,/g, ''));
  await box.fill('Cap rate? ' + 'Please walk me through the NOI normalisation, the rent roll and the exit assumptions. '.repeat(8));
  await expect.poll(async () => tokens(await preflight.textContent())).toBeGreaterThan(tokens(short) + 100);
  await expect(preflight).toContainText('of what is left of your daily token budget');
  await expect(preflight).toContainText("of what is left of this deal's token budget");
  await expect(preflight).toContainText('of what is left of your monthly budget');
  await box.fill('');
  await expect(preflight).toHaveText('');
});

test('a user with a tiny daily budget sees why Send is off, and when it resets', async ({ page }) => {
  await signIn(page, TINY);
  await openDeal(page, 'Route 9 Logistics Center');
  const banner = page.getByTestId('daily-out');
  await expect(banner).toContainText(/You have reached your daily limit of 100 tokens \(\$\d+\.\d\d so far\)\. It resets at midnight/);
  // Dollars beside tokens on the meters.
  await expect(page.getByTestId('meter-daily')).toContainText(/\/ 100 tokens · \$\d+\.\d\d/);
  await expect(page.getByTestId('meter-deal')).toContainText(/tokens · \$\d/);
  await page.getByLabel('Message').fill('What is the cap rate?');
  const preflight = page.getByTestId('preflight');
  await expect(preflight).toContainText('cannot be sent now: your daily token budget cannot take it until midnight');
  await expect(page.getByTestId('send')).toBeDisabled();
  // The same banner, in the same words, on every tab of the deal.
  const wording = await banner.textContent();
  for (const tab of ['Report', 'Sales comps', 'Chat']) {
    await page.getByRole('tab', { name: tab }).click();
    await expect(page.getByTestId('daily-out')).toHaveText(wording!);
    if (tab === 'Sales comps') {
      // Extract is off, for the same reason in the same words (not enabled, then refused).
      await page.getByLabel('Broker or offering-memorandum text').fill('123 Main St sold for $4,100,000 in March 2025.');
      await expect(page.getByTestId('extract')).toBeDisabled();
      await expect(page.getByTestId('extract-blocked')).toHaveText(`Extract is off: ${wording}`);
    }
  }
});
