import { readFileSync } from 'fs';
import { expect, test } from '@playwright/test';
import { ANALYST, newDeal, signIn, unzipText } from './helpers';

const BROKER_TEXT = `1. Bayview Commons, 40 Bay St, Tampa, FL — sold March 2025 for $24,500,000; 98,000 SF; 6.1% cap rate.

2. Palm Court, 12 Palm Ave, Tampa, FL — sold 2024-11-15 for $18.2M, 70,000 square feet, 6.4% cap.`;

test('the memo: estimate first, then copy, print, download as Word and compare versions', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await signIn(page, ANALYST);
  await newDeal(page, 'Memo Tower');
  await page.getByRole('tab', { name: 'Sales comps' }).click();
  await page.getByLabel('Broker or offering-memorandum text').fill(BROKER_TEXT);
  await page.getByRole('button', { name: 'Extract' }).click();
  await expect(page.getByTestId('extract-result')).toHaveText('2 sales added.');

  // Before generating: what it will cost and what it reserves.
  await page.getByRole('tab', { name: 'Report' }).click();
  const estimate = page.getByTestId('memo-estimate');
  await expect(estimate).toContainText(/≈ [\d,]+ input tokens and up to [\d,]+ output tokens on /);
  await expect(estimate).toContainText('reserves up to');
  await page.getByRole('button', { name: 'Generate memo' }).click();
  const memo = page.getByTestId('memo');
  await expect(memo.getByRole('heading', { name: 'Summary', level: 2 })).toBeVisible();

  // Figures in the memo's tables are right-aligned.
  const price = memo.locator('td.num', { hasText: '$24,500,000' });
  await expect(price).toHaveCSS('text-align', 'right');

  // Versions say who, when, which model and what it cost.
  const versions = page.getByTestId('memo-version');
  await expect(versions).toHaveCount(1);
  await expect(versions.first()).toContainText(/^v1 · \d{4}-\d\d-\d\d \d\d:\d\d · analyst@dealdesk\.test · offline-simulated · [\d,]+ tokens · \$/);

  // Copy as Markdown.
  await page.getByRole('button', { name: 'Copy as Markdown' }).click();
  await expect(page.getByTestId('memo-copied')).toHaveText('Copied as Markdown.');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied).toContain('## Summary');
  expect(copied).toContain('| Bayview Commons |');

  // Markdown and Word downloads; the .docx holds the memo in its XML parts.
  const md = page.waitForEvent('download');
  await page.getByTestId('memo-md').click();
  const mdFile = await md;
  expect(mdFile.suggestedFilename()).toMatch(/^memo-memo-tower-\d+-v1\.md$/);
  expect(readFileSync(await mdFile.path(), 'utf8')).toBe(copied);
  const docx = page.waitForEvent('download');
  await page.getByTestId('memo-docx').click();
  const docxFile = await docx;
  expect(docxFile.suggestedFilename()).toMatch(/^memo-memo-tower-\d+-v1\.docx$/);
  const parts = unzipText(readFileSync(await docxFile.path()));
  expect([...parts.keys()]).toEqual(expect.arrayContaining(['[Content_Types].xml', '_rels/.rels', 'word/document.xml', 'word/styles.xml']));
  expect(parts.get('[Content_Types].xml')).toContain('wordprocessingml.document.main+xml');
  const document = parts.get('word/document.xml') ?? '';
  expect(document).toContain('Investment memo: Memo Tower');
  expect(document).toMatch(/<w:pStyle w:val="Heading2" ?\/>/);
  expect(document).toContain('>Recommendation<');
  expect(document).toContain('<w:tbl>');
  expect(document).toContain('>Bayview Commons<');

  // Printing leaves the memo alone on the page.
  await page.emulateMedia({ media: 'print' });
  await expect(page.locator('header.topbar')).toBeHidden();
  await expect(page.getByRole('tab', { name: 'Report' })).toBeHidden();
  await expect(page.getByRole('button', { name: 'Generate memo' })).toBeHidden();
  await expect(memo).toBeVisible();
  await page.emulateMedia({ media: 'screen' });

  // A second version, and the two side by side.
  await page.getByRole('button', { name: 'Generate memo' }).click();
  await expect(versions).toHaveCount(2);
  await expect(versions.first()).toContainText(/^v2 · /);
  await expect(versions.first()).toHaveAttribute('aria-pressed', 'true');
  await page.getByLabel('Compare with').selectOption({ label: await versions.nth(1).innerText() });
  const compare = page.getByTestId('memo-compare');
  await expect(compare.getByRole('heading', { name: /^v2 · / })).toBeVisible();
  await expect(compare.getByRole('heading', { name: /^v1 · / })).toBeVisible();
  await expect(page.getByTestId('memo-other').getByRole('heading', { name: 'Summary', level: 2 })).toBeVisible();
  const [left, right] = await Promise.all([page.getByTestId('memo').boundingBox(), page.getByTestId('memo-other').boundingBox()]);
  expect(right!.x).toBeGreaterThan(left!.x + left!.width - 1);
  await page.getByLabel('Compare with').selectOption({ label: 'No other version' });
  await expect(compare).toHaveCount(0);
});
