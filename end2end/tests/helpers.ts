import { expect, Page } from '@playwright/test';

export const ANALYST = { email: 'analyst@dealdesk.test', password: 'analyst-demo-pass' };
export const ADMIN = { email: 'admin@dealdesk.test', password: 'admin-demo-pass' };
/** Created by run.sh with a 100-token daily budget. */
export const TINY = { email: 'tiny@dealdesk.test', password: 'tiny-demo-pass' };
/** Created by run.sh; the limits test sets its monthly budget. */
export const LIMITED = { email: 'limits@dealdesk.test', password: 'limits-demo-pass' };
/** Created by run.sh with 20 calls over the last 7 days. */
export const FORESIGHT = { email: 'foresight@dealdesk.test', password: 'foresight-demo-pass' };

/** Clicks before hydration do nothing: wait for the marker the frontend sets. */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

export async function signIn(page: Page, who: { email: string; password: string }) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Deals' })).toBeVisible();
  await hydrated(page);
}
