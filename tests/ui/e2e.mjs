// End-to-end tests of tollgate's embedded admin UI. Plain node + playwright-core driving the
// system chromium. Env: TOLLGATE_URL (e.g. http://127.0.0.1:3555), TOLLGATE_ADMIN_PASSWORD.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = (process.env.TOLLGATE_URL || 'http://127.0.0.1:3555').replace(/\/$/, '');
const ADMIN_PW = process.env.TOLLGATE_ADMIN_PASSWORD || 'ui-admin-pw';
const SHOTS = process.env.UI_SCREENSHOTS || 'target/ui-screenshots';
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(SHOTS, { recursive: true });

const T = 10_000;
const login = `e2e_${Date.now().toString(36)}`;
const userPw = 'first-pass-123';
const userPw2 = 'second-pass-456';

const browser = await chromium.launch({
  executablePath: EXE,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
const results = [];
let failed = false;

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push(`ok   ${name} (${Date.now() - t0} ms)`);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    results.push(`FAIL ${name}`);
    throw e;
  }
}
const shot = (page, name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
const statusOf = (page, id = '#page-status') => page.locator(id);
async function expectStatus(page, id, re, kind = 'ok') {
  // wait until the action finished (not "busy") and the text matches
  const loc = page.locator(`${id}:not(.busy)`).filter({ hasText: re });
  try {
    await loc.waitFor({ timeout: T });
  } catch (e) {
    throw new Error(`status ${id} never matched ${re}: class "${await page.locator(id).getAttribute('class')}" text "${await page.locator(id).textContent()}"`);
  }
  const cls = await loc.getAttribute('class');
  assert.ok(cls.includes(kind), `status ${id} should be ${kind}, got class "${cls}" text "${await loc.textContent()}"`);
}

async function signIn(page, user, pw) {
  await page.goto(BASE + '/');
  await page.locator('#login-user').waitFor({ timeout: T });
  await page.fill('#login-user', user);
  await page.fill('#login-password', pw);
  await page.click('#login-submit');
  await page.locator('#whoami').filter({ hasText: user }).waitFor({ timeout: T });
}

const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const admin = await adminCtx.newPage();
admin.on('dialog', (d) => d.accept());
admin.on('pageerror', (e) => { console.log('page error (admin):', e.message); failed = true; });
// The Content-Security-Policy must not block anything the UI does.
admin.on('console', (m) => {
  if (/Content Security Policy/i.test(m.text())) { console.log('CSP violation (admin):', m.text()); failed = true; }
});
let userId = null;
let userCtx, userPage;

try {
  await step('1 sign in as admin', async () => {
    // a wrong password shows the server's message first
    await admin.goto(BASE + '/');
    await admin.fill('#login-user', 'admin');
    await admin.fill('#login-password', 'wrong-password');
    await admin.click('#login-submit');
    await admin.locator('#login-error').filter({ hasText: 'Invalid username or password' }).waitFor({ timeout: T });
    await signIn(admin, 'admin', ADMIN_PW);
    await admin.locator('[data-testid="stat-users"]').waitFor({ timeout: T });
    await shot(admin, '01-overview');
  });

  await step('2 create a user from the Users page', async () => {
    await admin.goto(BASE + '/#/users');
    await admin.locator('[data-testid="user-row-admin"]').waitFor({ timeout: T });
    await admin.fill('#new-user-name', 'E2E User');
    await admin.fill('#new-user-email', `${login}@example.com`);
    await admin.fill('#new-user-login', login);
    await admin.fill('#new-user-password', userPw);
    await admin.click('#new-user-submit');
    await expectStatus(admin, '#new-user-status', /User created/);
    await admin.locator(`[data-testid="user-row-${login}"]`).waitFor({ timeout: T });
    await shot(admin, '02-user-created');
  });

  await step('3 reset the password and sign in as the user in a second context', async () => {
    await admin.click(`[data-testid="user-link-${login}"]`);
    await admin.locator('#user-title').filter({ hasText: login }).waitFor({ timeout: T });
    userId = Number(admin.url().match(/#\/users\/(\d+)/)[1]);
    await admin.fill('#new-password', userPw2);
    await admin.click('#password-save');
    await expectStatus(admin, '#page-status', /password/i);
    await shot(admin, '03a-password-reset');
    userCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    userPage = await userCtx.newPage();
    // the old password no longer works
    await userPage.goto(BASE + '/');
    await userPage.fill('#login-user', login);
    await userPage.fill('#login-password', userPw);
    await userPage.click('#login-submit');
    await userPage.locator('#login-error').filter({ hasText: /invalid/i }).waitFor({ timeout: T });
    await signIn(userPage, login, userPw2);
    await userPage.locator('h1', { hasText: 'My account' }).waitFor({ timeout: T });
    await shot(userPage, '03b-user-signed-in');
  });

  await step('4 revoke the user session; the second context is signed out', async () => {
    await admin.click('#sessions-refresh');
    const revoke = admin.locator('#sessions-body button[data-revoke]');
    await revoke.first().waitFor({ timeout: T });
    assert.equal(await revoke.count(), 1, 'exactly one session for the new user');
    await shot(admin, '04a-sessions');
    await revoke.first().click();
    await expectStatus(admin, '#page-status', /revoked/i);
    await admin.locator('[data-testid="no-sessions"]').waitFor({ timeout: T });
    await userPage.reload();
    await userPage.locator('#login-user').waitFor({ timeout: T });
    assert.equal(await userPage.locator('#top').isVisible(), false, 'shell hidden when signed out');
    await shot(userPage, '04b-user-signed-out');
  });

  await step('5 encryption: rotate keys and re-encrypt', async () => {
    await admin.goto(BASE + '/#/encryption');
    await admin.locator('[data-testid^="datakey-"]').first().waitFor({ timeout: T });
    const before = await admin.locator('[data-testid^="datakey-"]').count();
    await admin.click('#enc-rotate');
    await expectStatus(admin, '#page-status', /rotated/i);
    await admin.waitForFunction((n) => document.querySelectorAll('[data-testid^="datakey-"]').length > n, before, { timeout: T });
    await admin.click('#enc-reencrypt-secrets');
    await expectStatus(admin, '#page-status', /re-encrypted/i);
    await admin.click('#enc-reencrypt-datakeys');
    await expectStatus(admin, '#page-status', /keys re-encrypted/i);
    await shot(admin, '05-encryption');
  });

  await step('6 license: invalid token shows the 400 message; upload a valid one; remove with the instance URL', async () => {
    await admin.goto(BASE + '/#/license');
    await admin.locator('[data-testid="license-state"]').waitFor({ timeout: T });
    const inst = await admin.inputValue('#license-instance');
    assert.equal(inst, process.env.TOLLGATE_ROOT_URL || BASE + '/', 'instance URL is prefilled from the status');
    await admin.fill('#license-token', 'not-a-jwt');
    await admin.click('#license-upload');
    await expectStatus(admin, '#page-status', /malformed token/i, 'err');
    await shot(admin, '06a-license-invalid');
    // A valid token (issued by `tollgate license issue` in run.sh) is accepted and shown valid.
    await admin.fill('#license-token', process.env.TOLLGATE_LICENSE_TOKEN);
    await admin.click('#license-upload');
    await admin.locator('[data-testid="license-state"]', { hasText: 'valid' }).waitFor({ timeout: T });
    assert.equal((await admin.locator('[data-testid="license-state"]').innerText()).trim(), 'valid');
    await shot(admin, '06b-license-valid');
    await admin.click('#license-remove');
    await expectStatus(admin, '#page-status', /removed|202/i);
    // upload / renew controls stay visible and clickable (no overlay)
    assert.ok(await admin.locator('#license-upload').isVisible());
    await admin.locator('#license-renew').click({ trial: true, timeout: T });
    await shot(admin, '06c-license-removed');
    assert.notEqual((await admin.locator('[data-testid="license-state"]').innerText()).trim(), 'valid');
  });

  await step('7 provisioning: reload datasources', async () => {
    await admin.goto(BASE + '/#/provisioning');
    await admin.locator('[data-testid="prov-datasources"]').waitFor({ timeout: T });
    await admin.click('#reload-datasources');
    await expectStatus(admin, '#page-status', /Datasources config reloaded/);
    await admin.click('#ldap-reload');
    await expectStatus(admin, '#ldap-status-line', /LDAP is not enabled/, 'err');
    await shot(admin, '07-provisioning');
  });

  await step('8 alerts: pause all', async () => {
    await admin.goto(BASE + '/#/alerts');
    await admin.click('#pause-all');
    await expectStatus(admin, '#page-status', /alerts paused/);
    await shot(admin, '08-alerts');
  });

  await step('9 accessibility: labels on every page, keyboard-only sign in', async () => {
    const pages = ['overview', 'users', `users/${userId}`, 'settings', 'license', 'encryption', 'provisioning', 'alerts', 'access'];
    for (const p of pages) {
      await admin.goto(BASE + '/#/' + p);
      await admin.waitForLoadState('networkidle');
      await admin.waitForTimeout(150);
      const unlabeled = await admin.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.type !== 'hidden')
        .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
        .map((el) => el.id || el.outerHTML.slice(0, 80)));
      assert.deepEqual(unlabeled, [], `unlabeled controls on #/${p}`);
      const unnamedButtons = await admin.evaluate(() => [...document.querySelectorAll('button, a[href]')]
        .filter((el) => !(el.textContent.trim() || el.getAttribute('aria-label'))).map((el) => el.outerHTML.slice(0, 80)));
      assert.deepEqual(unnamedButtons, [], `unnamed buttons/links on #/${p}`);
    }
    await shot(admin, '09a-access-page');
    const kctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const kp = await kctx.newPage();
    await kp.goto(BASE + '/');
    await kp.locator('#login-user').waitFor({ timeout: T });
    await kp.evaluate(() => document.activeElement && document.activeElement.blur());
    let focused = '';
    for (let i = 0; i < 6 && focused !== 'login-user'; i++) {
      await kp.keyboard.press('Tab');
      focused = await kp.evaluate(() => document.activeElement && document.activeElement.id);
    }
    assert.equal(focused, 'login-user', 'Tab reaches the username field');
    await kp.keyboard.type('admin');
    await kp.keyboard.press('Tab');
    assert.equal(await kp.evaluate(() => document.activeElement.id), 'login-password');
    await kp.keyboard.type(ADMIN_PW);
    await kp.keyboard.press('Enter');
    await kp.locator('#whoami').filter({ hasText: 'admin' }).waitFor({ timeout: T });
    await shot(kp, '09b-keyboard-login');
    await kctx.close();
  });

  await step('10 users page at 390px and 1280px', async () => {
    for (const [w, h] of [[390, 844], [1280, 900]]) {
      await admin.setViewportSize({ width: w, height: h });
      await admin.goto(BASE + '/#/users');
      await admin.locator(`[data-testid="user-row-${login}"]`).waitFor({ timeout: T });
      const overflow = await admin.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `no horizontal page overflow at ${w}px (got ${overflow}px)`);
      if (w === 390) {
        assert.equal(await admin.locator('#nav').isVisible(), false, 'nav collapsed at 390px');
        await admin.click('#nav-toggle');
        assert.equal(await admin.locator('#nav').isVisible(), true, 'nav opens with the toggle');
        await admin.click('#nav-toggle');
      }
      await shot(admin, `users-${w}`);
    }
  });
  await step('swagger UI renders under its CSP', async () => {
    await admin.goto(BASE + '/swagger/');
    await admin.locator('.opblock').first().waitFor({ timeout: T });
  });
} catch {
  // already reported
} finally {
  await browser.close();
}
console.log(`\n${results.join('\n')}\n${failed ? 'UI e2e FAILED' : 'UI e2e passed'}`);
process.exit(failed ? 1 : 0);
