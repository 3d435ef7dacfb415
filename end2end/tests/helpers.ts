import { expect, Page } from '@playwright/test';
import { inflateRawSync } from 'zlib';

export const ANALYST = { email: 'analyst@dealdesk.test', password: 'analyst-demo-pass' };
export const ADMIN = { email: 'admin@dealdesk.test', password: 'admin-demo-pass' };
/** Created by run.sh with a 100-token daily budget. */
export const TINY = { email: 'tiny@dealdesk.test', password: 'tiny-demo-pass' };
/** Created by run.sh; the limits test sets its monthly budget. */
export const LIMITED = { email: 'limits@dealdesk.test', password: 'limits-demo-pass' };
/** Created by run.sh with 20 calls over the last 7 days. */
export const FORESIGHT = { email: 'foresight@dealdesk.test', password: 'foresight-demo-pass' };
/** Created by run.sh: the streaming tests' many calls (replies, titles, summaries) count
 * against this analyst's per-minute rate limit, not the one most tests share. */
export const STREAMER = { email: 'stream@dealdesk.test', password: 'stream-demo-pass' };

/** Clicks before hydration do nothing: wait for the marker the frontend sets. */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** Signs in on this run's server, or on the one at `base` (run.sh's ONLINE_URL). */
export async function signIn(page: Page, who: { email: string; password: string }, base = '') {
  await page.goto(`${base}/login`);
  await hydrated(page);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Deals' })).toBeVisible();
  await hydrated(page);
}

/**
 * Creates a deal named `prefix` and a timestamp (so runs never collide), opens it and
 * waits for hydration; returns the full name.
 */
export async function newDeal(page: Page, prefix: string, askingPrice?: string): Promise<string> {
  const name = `${prefix} ${Date.now()}`;
  await page.getByRole('link', { name: 'New deal' }).click();
  await page.getByLabel('Name').fill(name);
  if (askingPrice) await page.getByLabel('Asking price (USD)').fill(askingPrice);
  await page.getByRole('button', { name: 'Create deal' }).click();
  await expect(page.getByTestId('deal-name')).toContainText(prefix);
  await hydrated(page);
  return name;
}

/**
 * The files of a zip archive (a .docx) by name, as text: read from its central
 * directory, each stored or deflated. Enough to check a document's XML parts.
 */
export function unzipText(archive: Buffer): Map<string, string> {
  let end = archive.length - 22;
  while (end >= 0 && archive.readUInt32LE(end) !== 0x06054b50) end--;
  if (end < 0) throw new Error('not a zip archive');
  const count = archive.readUInt16LE(end + 10);
  let at = archive.readUInt32LE(end + 16);
  const files = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    if (archive.readUInt32LE(at) !== 0x02014b50) throw new Error('bad central directory');
    const method = archive.readUInt16LE(at + 10);
    const size = archive.readUInt32LE(at + 20);
    const nameLength = archive.readUInt16LE(at + 28);
    const extraLength = archive.readUInt16LE(at + 30);
    const commentLength = archive.readUInt16LE(at + 32);
    const local = archive.readUInt32LE(at + 42);
    const name = archive.toString('utf8', at + 46, at + 46 + nameLength);
    const dataStart = local + 30 + archive.readUInt16LE(local + 26) + archive.readUInt16LE(local + 28);
    const data = archive.subarray(dataStart, dataStart + size);
    files.set(name, (method === 8 ? inflateRawSync(data) : data).toString('utf8'));
    at += 46 + nameLength + extraLength + commentLength;
  }
  return files;
}
