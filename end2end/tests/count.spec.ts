import { expect, test } from '@playwright/test';
import { ANALYST, newDeal, signIn } from './helpers';

// run.sh's second instance has an API key and talks to a fake Claude whose count_tokens
// answers about one token per 3.5 characters of the request.
const online = process.env.ONLINE_URL;

test("with Claude configured, the pre-flight shows Claude's exact count of the draft once typing stops", async ({ page }) => {
  test.skip(!online, 'run through end2end/run.sh (ONLINE_URL)');
  await signIn(page, ANALYST, online);
  await newDeal(page, 'Counted Plaza');

  const counts: string[] = [];
  page.on('request', (r) => { if (r.url().endsWith('/api/chat/count')) counts.push(r.postData() ?? ''); });
  const exact = page.getByTestId('preflight-exact');
  const tokens = async () => Number(((await exact.textContent()) ?? '').match(/exactly ([\d,]+) tokens/)![1].replace(/,/g, ''));

  const box = page.getByLabel('Message');
  await box.pressSequentially('What is the cap rate?', { delay: 20 });
  await expect(exact).toContainText('Claude counts exactly');
  const first = await tokens();
  // Asked once for the draft at rest, not once per keystroke.
  expect(counts.length).toBe(1);
  expect(decodeURIComponent(counts[0].replace(/\+/g, ' '))).toContain('message=What is the cap rate?');

  // Typing on hides the count until Claude has counted the new draft, which is longer.
  await box.pressSequentially(' And how does the rent roll look, unit by unit, against the market?');
  await expect(exact).toContainText('Claude counts exactly');
  expect(await tokens()).toBeGreaterThan(first);
  expect(counts.length).toBe(2);

  // An empty box asks nothing and shows no count; a draft erased before it rested is
  // never asked for either.
  await box.fill('');
  await expect(exact).toHaveCount(0);
  await box.fill('A draft typed and erased at once');
  await box.fill('');
  await page.waitForTimeout(1500);
  expect(counts.length).toBe(2);
});

test('with the offline model, the pre-flight asks for no count and shows only the estimate', async ({ page }) => {
  await signIn(page, ANALYST);
  await newDeal(page, 'Offline Count Plaza');
  const counts: string[] = [];
  page.on('request', (r) => { if (r.url().endsWith('/api/chat/count')) counts.push(r.url()); });
  await page.getByLabel('Message').pressSequentially('What is the cap rate?');
  await expect(page.getByTestId('preflight')).toContainText('input tokens');
  await page.waitForTimeout(1500);
  expect(counts).toEqual([]);
  await expect(page.getByTestId('preflight-exact')).toHaveCount(0);
});
