import { expect, test } from '@playwright/test';
import { ADMIN, hydrated, signIn } from './helpers';

// The Content-Security-Policy allows only the app's own scripts, styles, images and
// wasm: every page must still hydrate under it, with no violation reported.
test('every page hydrates under the Content-Security-Policy', async ({ page }) => {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`${page.url()}: ${err.message}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });

  await page.goto('/login');
  await hydrated(page);
  await signIn(page, ADMIN);
  const dealHref = await page.getByRole('link', { name: 'Harbor Point Office Tower' }).getAttribute('href');
  for (const path of ['/', '/deals/new', dealHref!, `${dealHref}/edit`, '/admin/tokens', '/admin/users', '/admin/deals', '/admin/limits', '/admin/prices', '/admin/audit', '/admin/alerts', '/my-usage']) {
    const response = await page.goto(path);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self' 'nonce-");
    await hydrated(page);
  }
  expect(problems).toEqual([]);
});
