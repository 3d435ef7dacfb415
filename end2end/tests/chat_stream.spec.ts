import { expect, Page, test } from '@playwright/test';
import { STREAMER, newDeal, signIn } from './helpers';

/// The input tokens the pre-flight shows for the draft ("≈ 1,234 input tokens (…").
async function preflightTokens(page: Page): Promise<number> {
  const text = (await page.getByTestId('preflight').textContent()) ?? '';
  const match = text.match(/≈ ([\d,]+) input tokens/);
  expect(match, `a pre-flight estimate in "${text}"`).not.toBeNull();
  return Number(match![1].replace(/,/g, ''));
}

test('a reply streams in as it is written, and Stop keeps what was written', async ({ page }) => {
  await signIn(page, STREAMER);
  await newDeal(page, 'Stream Point');
  const box = page.getByLabel('Message');
  const send = page.getByTestId('send');
  const streaming = page.getByTestId('streaming');
  const replies = page.getByTestId('reply');

  // Tokens appear progressively: the reply grows on the page before it is whole.
  await box.fill('Walk me through the underwriting in detail');
  await send.click();
  await expect(streaming).toBeVisible();
  const early = ((await streaming.textContent()) ?? '').length;
  await expect.poll(async () => ((await streaming.textContent()) ?? '').length).toBeGreaterThan(early + 40);
  await expect(replies).toHaveCount(0);
  // Then it is shown whole, rendered from what the server stored.
  await expect(replies).toHaveCount(1, { timeout: 15_000 });
  await expect(replies.first().locator('strong').first()).toHaveText('Rent roll.');
  await expect(replies.first()).toContainText('Recommendation.');
  await expect(streaming).toHaveCount(0);

  // Stop ends the reply early: the part written is kept, marked stopped.
  await expect(send).toHaveText('Send');
  await box.fill('Walk me through the underwriting in detail');
  await send.click();
  await expect(streaming).toContainText('Rent roll');
  const stop = page.getByTestId('stop');
  await expect(stop).toBeEnabled();
  await stop.click();
  await expect(replies).toHaveCount(2);
  const stopped = page.locator('.message.assistant').last();
  await expect(stopped.getByTestId('stopped')).toHaveText('Stopped');
  await expect(replies.last()).toContainText('Rent roll');
  await expect(replies.last()).not.toContainText('Recommendation.');
  // Billed for what was written: fewer output tokens than the whole reply.
  const out = async (n: number) => Number((await page.locator('.message.assistant .meta').nth(n).textContent())!.match(/· ([\d,]+) out/)![1].replace(/,/g, ''));
  expect(await out(1)).toBeLessThan(await out(0));
  await expect(page.getByTestId('stop')).toHaveCount(0);
  await expect(box).toBeFocused();
});

test('summarising the conversation shrinks the next call, and a pinned message stays in it', async ({ page }) => {
  await signIn(page, STREAMER);
  await newDeal(page, 'Summary Yards');
  const box = page.getByLabel('Message');
  const send = page.getByTestId('send');
  const replies = page.getByTestId('reply');
  const long = (topic: string) => `${topic}: ` + 'The rent roll shows twelve tenants with staggered expiries, modest annual bumps and two renewals pending. '.repeat(12);

  await box.fill(long('Rent roll'));
  await send.click();
  await expect(replies).toHaveCount(1);
  await expect(send).toHaveText('Send');
  await box.fill(long('Operating costs'));
  await send.click();
  await expect(replies).toHaveCount(2);

  // Pin the first question: every later call carries it.
  const first = page.locator('.message.user').first();
  await first.getByTestId('pin').click();
  await expect(page.locator('.message.user').first().getByTestId('pinned')).toHaveText('Pinned');
  await expect(page.locator('.message.user').first().getByTestId('pin')).toHaveText('Unpin');

  await box.fill('So what should we bid?');
  const offer = page.getByTestId('summarise-offer');
  await expect(offer).toContainText('Summarise the conversation so far');
  const before = await preflightTokens(page);
  await offer.getByTestId('summarise').click();
  // The summary is shown in the conversation, and the next call starts from it.
  await expect(page.getByTestId('summary')).toContainText('Summary of the conversation so far');
  await expect(page.getByTestId('preflight')).toContainText('summary and pinned');
  await expect.poll(() => preflightTokens(page)).toBeLessThan(before);
  const after = await preflightTokens(page);
  test.info().annotations.push({ type: 'Pre-flight input before / after the summary', description: `${before} / ${after} tokens` });
  await expect(send).toHaveText('Send');
  await send.click();
  await expect(replies).toHaveCount(4); // two replies, the summary, the new reply
  const input = Number((await page.locator('.message.assistant .meta').last().textContent())!.match(/([\d,]+) in/)![1].replace(/,/g, ''));
  expect(input).toBeLessThan(before);
});

test('Claude titles a conversation after its first exchange, then again after the 5th message', async ({ page }) => {
  await signIn(page, STREAMER);
  const deal = await newDeal(page, 'Title Court');
  const box = page.getByLabel('Message');
  const send = page.getByTestId('send');
  const title = page.getByTestId('thread-title');
  const ask = async (question: string, replies: number) => {
    await expect(send).toHaveText('Send');
    await box.fill(question);
    await send.click();
    await expect(page.getByTestId('reply')).toHaveCount(replies);
  };
  await ask('What is the cap rate?', 1);
  await expect(title).toHaveText(`Cap rate and NOI for ${deal}`);
  // Four messages: not due, the title stays.
  await ask('What are the main risks?', 2);
  await page.waitForTimeout(500);
  await expect(title).toHaveText(`Cap rate and NOI for ${deal}`);
  // Six messages: past the 5th, Claude titles it again (the offline model by its latest topic).
  await ask('How should we price an offer?', 3);
  await expect(title).toHaveText(`Pricing an offer for ${deal}`);
  await expect(page.locator('.thread-list')).toContainText(`Pricing an offer for ${deal}`);
});
