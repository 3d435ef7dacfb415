import { expect, Page, test } from '@playwright/test';
import { ADMIN, hydrated, signIn } from './helpers';

// Every page at a phone's width (390 px) and a laptop's (1280 px): nothing wider than the
// screen (tables scroll inside their own box), no console errors. Screenshots of each
// page are kept in end2end/screenshots/ (CI artefacts, not committed) and attached to the
// report.
for (const width of [390, 1280]) {
  test(`every page fits ${width} px`, async ({ browser }, testInfo) => {
    const context = await browser.newContext({ viewport: { width, height: 844 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`${page.url()}: ${msg.text()}`); });
    page.on('pageerror', (err) => problems.push(`${page.url()}: ${err.message}`));
    await page.goto('/login');
    await hydrated(page);
    await checkWidth(page, width, '/login');
    await signIn(page, ADMIN);
    const deal = await page.getByRole('link', { name: 'Harbor Point Office Tower' }).getAttribute('href');
    const pages = ['/', '/deals/new', deal!, `${deal}/edit`, '/my-usage', '/admin/tokens', '/admin/tokens?range=90',
      '/admin/users', '/admin/deals', '/admin/limits', '/admin/prices', '/admin/alerts', '/admin/audit'];
    for (const path of pages) {
      await page.goto(path);
      await hydrated(page);
      await checkWidth(page, width, path);
      const file = `screenshots/${width}px${path.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '') || '-home'}.png`;
      await page.screenshot({ path: file, fullPage: true });
      await testInfo.attach(`${width}px ${path}`, { path: file, contentType: 'image/png' });
    }
    for (const tab of ['Report', 'Sales comps']) {
      await page.goto(deal!);
      await hydrated(page);
      await page.getByRole('tab', { name: tab }).click();
      await checkWidth(page, width, `${deal} (${tab})`);
    }
    expect(problems).toEqual([]);
    await context.close();
  });
}

async function checkWidth(page: Page, width: number, path: string) {
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  // The elements that stick out, to say what to fix.
  const culprits = wide <= width ? [] : await page.evaluate((w) => Array.from(document.querySelectorAll('body *'))
    .filter((e) => e.getBoundingClientRect().right > w + 0.5)
    .slice(0, 5)
    .map((e) => `${e.tagName.toLowerCase()}.${(e as HTMLElement).className} (${Math.round(e.getBoundingClientRect().right)} px)`), width);
  expect(wide, `${path} is ${wide} px wide at ${width} px: ${culprits.join(', ')}`).toBeLessThanOrEqual(width);
}
