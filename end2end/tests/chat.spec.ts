import { expect, test } from '@playwright/test';
import { ANALYST, hydrated, signIn } from './helpers';

test('an analyst holds a two-message conversation with the offline model and finds it after a reload', async ({ page }) => {
  await signIn(page, ANALYST);
  await page.getByRole('link', { name: 'Route 9 Logistics Center' }).click();
  await hydrated(page);
  await expect(page.getByText('offline model')).toBeVisible();

  const box = page.getByLabel('Message');
  const messages = page.getByTestId('messages');
  await box.fill('What is the cap rate on this deal?');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(messages.locator('.message.assistant .bubble')).toHaveCount(1);
  await expect(messages.locator('.message.assistant .bubble').first()).toContainText('Route 9 Logistics Center');
  await expect(messages.locator('.message.assistant .bubble').first()).toContainText('cap rate');

  // Enter sends too, once the cooldown after the first reply is over.
  await box.fill('What are the main risks?');
  await expect(page.getByTestId('send')).toHaveText(/Send \(\d\)/);
  await expect(page.getByTestId('send')).toHaveText('Send');
  await box.press('Enter');
  await expect(messages.locator('.message.assistant .bubble')).toHaveCount(2);
  await expect(messages.locator('.message.assistant .bubble').nth(1)).toContainText('risks');
  await expect(messages.locator('.message.assistant .meta').nth(1)).toContainText('offline-simulated');

  await page.reload();
  await hydrated(page);
  const thread = page.getByRole('button', { name: /What is the cap rate on this deal\?/ });
  await expect(thread).toBeVisible();
  await thread.click();
  await expect(messages.locator('.message.user .bubble')).toHaveText([
    'What is the cap rate on this deal?',
    'What are the main risks?',
  ]);
  await expect(messages.locator('.message.assistant .bubble')).toHaveCount(2);
});
