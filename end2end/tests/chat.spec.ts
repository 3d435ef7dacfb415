import { expect, test } from '@playwright/test';
import { ANALYST, hydrated, newDeal, signIn } from './helpers';

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

  // Enter sends too, once the cooldown after the first send is over (the countdown is
  // tested in budget.spec.ts; the streamed reply may outlast it).
  await box.fill('What are the main risks?');
  await expect(page.getByTestId('send')).toHaveText('Send');
  await box.press('Enter');
  await expect(messages.locator('.message.assistant .bubble')).toHaveCount(2);
  await expect(messages.locator('.message.assistant .bubble').nth(1)).toContainText('risks');
  await expect(messages.locator('.message.assistant .meta').nth(1)).toContainText('offline-simulated');

  await page.reload();
  await hydrated(page);
  // Claude titled it (the offline model's title, here).
  const thread = page.getByRole('button', { name: /Cap rate and NOI for Route 9 Logistics Center/ });
  await expect(thread).toBeVisible();
  await thread.click();
  await expect(messages.locator('.message.user .bubble')).toHaveText([
    'What is the cap rate on this deal?',
    'What are the main risks?',
  ]);
  await expect(messages.locator('.message.assistant .bubble')).toHaveCount(2);
});

test('replies read as Markdown, the list follows the newest one, the box keeps focus and a refused send keeps its draft', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await signIn(page, ANALYST);
  await newDeal(page, 'Markdown Plaza');
  const box = page.getByLabel('Message');
  const send = page.getByTestId('send');
  const replies = page.getByTestId('reply');

  // A table, bold and a numbered list render as such, never as raw Markdown.
  await box.fill('Show me a cap rate sensitivity table');
  // The moment Send comes back, measured in the page from the click.
  // (The button reads "Sending…", then "Send (n)" while the cooldown runs, then "Send".)
  await page.evaluate(() => {
    const w = window as unknown as { sendBack: Promise<number> };
    w.sendBack = new Promise<number>((resolve) => {
      let sent = 0;
      let busy = false;
      const label = () => document.querySelector('[data-testid="send"]')?.textContent ?? '';
      document.querySelector('[data-testid="send"]')!.addEventListener('click', () => { sent = performance.now(); }, { capture: true, once: true });
      const watch = new MutationObserver(() => {
        if (!sent) return;
        if (label() !== 'Send') busy = true;
        else if (busy) { watch.disconnect(); resolve(performance.now() - sent); }
      });
      watch.observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  });
  await send.click();
  const table = replies.last().locator('table');
  await expect(table.getByRole('columnheader', { name: 'Cap rate' })).toBeVisible();
  await expect(table.locator('td.num', { hasText: '$18,181,818' })).toHaveCSS('text-align', 'right');
  await expect(replies.last().locator('strong')).toHaveText('$1,000,000 of NOI');
  await expect(replies.last()).not.toContainText('|---|');
  // The box has the focus again, and Send is back 2 s after the send (not after the reply).
  await expect(box).toBeFocused();
  // Claude's title arrives after the reply; the conversation is not rendered anew under
  // the analyst's cursor, so the box keeps the focus.
  await expect(page.getByTestId('thread-title')).toHaveText(/^Cap rate sensitivity for Markdown Plaza/);
  await expect(box).toBeFocused();
  const back = await page.evaluate(() => (window as unknown as { sendBack: Promise<number> }).sendBack);
  test.info().annotations.push({ type: 'Send back after the send', description: `${Math.round(back)} ms` });
  expect(back).toBeGreaterThan(1900);
  expect(back).toBeLessThan(2300);
  await box.fill('What are the main risks?');
  await send.click();
  await expect(replies).toHaveCount(2);
  await expect(replies.last().locator('ol > li')).toHaveCount(4);
  await expect(page.locator('[role="status"][aria-live="polite"]', { hasText: 'Claude replied:' })).toHaveCount(1);

  // Copy a reply as its Markdown.
  await page.locator('.message.assistant').last().getByRole('button', { name: 'Copy' }).click();
  await expect(page.locator('.message.assistant').last()).toContainText('Copied.');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toContain('1. Tenant rollover');

  // The list shows the newest reply at its bottom.
  await expect(send).toHaveText('Send');
  await box.fill('And the pricing?');
  await send.click();
  await expect(replies).toHaveCount(3);
  const atBottom = () => page.getByTestId('messages').evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2);
  await expect.poll(atBottom).toBe(true);
  expect(await page.getByTestId('messages').evaluate((el) => el.scrollHeight > el.clientHeight)).toBe(true);

  // A send the server refuses gives the text back (a refusal ends the reply's stream).
  await page.route('**/api/chat/stream', (route) => route.fulfill({
    status: 200,
    contentType: 'text/plain',
    body: JSON.stringify({ failed: { error: { kind: 'deal_budget_exhausted', message: "This deal's token budget is used up." } } }) + '\n',
  }));
  await expect(send).toHaveText('Send');
  const draft = 'A long question the server will refuse — keep every word of it.';
  await box.fill(draft);
  await send.click();
  await expect(page.getByRole('alert')).toContainText("This deal's token budget is used up.");
  await expect(box).toHaveValue(draft);
  await page.unroute('**/api/chat/stream');

  // Near the limit the length shows; over it Send is off and says why.
  await box.fill('x'.repeat(46_000));
  await expect(page.getByTestId('char-count')).toHaveText('46,000 / 50,000 characters');
  await box.fill('x'.repeat(50_001));
  await expect(page.getByTestId('char-count')).toContainText('too long to send');
  await expect(send).toBeDisabled();
});

test('Claude titles conversations; analysts rename, search, delete and restore them', async ({ page }) => {
  await signIn(page, ANALYST);
  const deal = await newDeal(page, 'Thread Yard');
  const box = page.getByLabel('Message');
  const send = page.getByTestId('send');
  const list = page.locator('.thread-list');

  await box.fill('What is the cap rate?');
  await send.click();
  await expect(page.getByTestId('reply')).toHaveCount(1);
  // Claude's title (the offline model's, here) replaces the first words of the question.
  await expect(page.getByTestId('thread-title')).toHaveText(`Cap rate and NOI for ${deal}`);
  await expect(list.getByRole('button')).toHaveCount(1);
  await expect(list).toContainText(`Cap rate and NOI for ${deal}`);

  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByLabel('Conversation title').fill('My cap rate notes');
  await page.getByRole('button', { name: 'Save title' }).click();
  await expect(page.getByTestId('thread-title')).toHaveText('My cap rate notes');
  await expect(list).toContainText('My cap rate notes');

  await page.getByRole('button', { name: 'New conversation' }).click();
  await expect(send).toHaveText('Send');
  await box.fill('What are the main risks?');
  await send.click();
  await expect(page.getByTestId('thread-title')).toHaveText(`Underwriting risks for ${deal}`);
  await expect(list.getByRole('button')).toHaveCount(2);

  // Search reads titles and messages.
  const search = page.getByLabel('Search conversations');
  await search.fill('rollover');
  await expect(list.getByRole('button')).toHaveCount(1);
  await expect(list).toContainText('Underwriting risks');
  await search.fill('my CAP rate');
  await expect(list.getByRole('button')).toHaveCount(1);
  await expect(list).toContainText('My cap rate notes');
  await search.fill('no such words');
  await expect(page.getByText('No conversation mentions “no such words”.')).toBeVisible();
  await search.fill('');
  await expect(list.getByRole('button')).toHaveCount(2);

  // Delete the open one; Undo brings it back.
  await page.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('thread-deleted')).toContainText(`Deleted “Underwriting risks for ${deal}”.`);
  await expect(list.getByRole('button')).toHaveCount(1);
  await page.getByTestId('thread-deleted').getByRole('button', { name: 'Undo' }).click();
  await expect(list.getByRole('button')).toHaveCount(2);
  await expect(page.getByTestId('thread-title')).toHaveText(`Underwriting risks for ${deal}`);
  await expect(page.getByTestId('thread-deleted')).toHaveCount(0);
});

test('a very long message starts collapsed and opens with Show more', async ({ page }) => {
  await signIn(page, ANALYST);
  await newDeal(page, 'Long Note Plaza');
  await page.getByLabel('Message').fill(`Please review these lease notes: ${'tenant pays its share of taxes and insurance; '.repeat(60)}`);
  await page.getByTestId('send').click();
  await expect(page.getByTestId('reply')).toHaveCount(1);
  const mine = page.locator('.message.user');
  const more = mine.getByRole('button', { name: 'Show more' });
  await expect(more).toHaveAttribute('aria-expanded', 'false');
  const bubble = mine.locator('.bubble');
  const closed = (await bubble.boundingBox())!.height;
  await more.click();
  await expect(mine.getByRole('button', { name: 'Show less' })).toHaveAttribute('aria-expanded', 'true');
  expect((await bubble.boundingBox())!.height).toBeGreaterThan(closed + 50);
  // A short reply has no such button.
  await expect(page.locator('.message.assistant').getByRole('button', { name: 'Show more' })).toHaveCount(0);
});

test('the address names the open conversation: reloads and tab switches keep it, and a deal resumes its latest', async ({ page }) => {
  await signIn(page, ANALYST);
  const deal = await newDeal(page, 'Address Court');
  const dealUrl = page.url();
  const box = page.getByLabel('Message');
  const send = page.getByTestId('send');
  const asked = page.locator('.message.user .bubble');

  await box.fill('What is the cap rate?');
  await send.click();
  await expect(page.getByTestId('reply')).toHaveCount(1);
  await expect(page).toHaveURL(/\/deals\/\d+\/chat\/\d+$/);
  const first = page.url();

  await page.getByRole('button', { name: 'New conversation' }).click();
  await expect(page).toHaveURL(dealUrl);
  await expect(send).toHaveText('Send');
  await box.fill('What are the main risks?');
  await send.click();
  await expect(page.getByTestId('reply')).toHaveCount(1);
  await expect(page).toHaveURL(/\/chat\/\d+$/);
  const second = page.url();
  expect(second).not.toBe(first);

  // Pick the first again: the address follows; a reload reopens it.
  await page.getByRole('button', { name: new RegExp(`Cap rate and NOI for ${deal}`) }).click();
  await expect(page).toHaveURL(first);
  await page.reload();
  await hydrated(page);
  await expect(asked).toHaveText(['What is the cap rate?']);
  // Switching tabs keeps it.
  await page.getByRole('tab', { name: 'Report' }).click();
  await page.getByRole('tab', { name: 'Chat' }).click();
  await expect(asked).toHaveText(['What is the cap rate?']);

  // Opening the deal itself resumes the latest conversation.
  await page.goto(dealUrl);
  await hydrated(page);
  await expect(asked).toHaveText(['What are the main risks?']);
  await expect(page).toHaveURL(second);
});

test('the pre-flight breaks the estimate down and offers to leave older messages out', async ({ page }) => {
  await signIn(page, ANALYST);
  await newDeal(page, 'Lean Context Park');
  const box = page.getByLabel('Message');
  const send = page.getByTestId('send');
  const preflight = page.getByTestId('preflight');
  const long = (topic: string) => `${topic}: ${'the rent roll shows steady occupancy across the portfolio '.repeat(60)}`;

  await box.fill(long('First'));
  await expect(preflight).toContainText('(deal facts ');
  await expect(preflight).toContainText(' · 0 earlier turns 0 · this message ');
  await send.click();
  await expect(page.getByTestId('reply')).toHaveCount(1);
  await expect(send).toHaveText('Send');
  await box.fill(long('Second'));
  await send.click();
  await expect(page.getByTestId('reply')).toHaveCount(2);
  await expect(send).toHaveText('Send');

  await box.fill('And the cap rate?');
  await expect(preflight).toContainText(' · 4 earlier turns ');
  const tokens = async () => Number(((await preflight.textContent()) ?? '').match(/≈ ([\d,]+) input tokens/)![1].replace(/,/g, ''));
  const before = await tokens();
  const offer = page.getByTestId('leave-out');
  await expect(offer).toContainText(/The 2 oldest messages sent with this one cost about [\d,]+ tokens\./);
  await offer.getByLabel('Leave them out of this send').check();
  await expect(preflight).toContainText(' · 2 earlier turns ');
  expect(await tokens()).toBeLessThan(before - 300);
  await send.click();
  await expect(page.getByTestId('reply')).toHaveCount(3);
  await expect(page.getByTestId('window-note')).toHaveText('2 earlier messages were not sent to Claude (they are still saved here).');
  await expect(page.locator('.message.user')).toHaveCount(3);
});
