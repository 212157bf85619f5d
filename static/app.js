// tollgate admin UI: plain ES modules, no build step, hash routing, talks to the same-origin
// JSON API with the session cookie. This module is the shell: sign in / out, the navigation
// and the router, both driven by the table of pages in pages.js. Each page is its own module
// under pages/; shared helpers live in lib.js, the SVG pictures in charts.js.

import { $, $$, view, esc, api, setStatus, session } from './lib.js';
import { PAGES, home, match } from './pages.js';

const TITLE = 'tollgate admin';

// ---------- sign in / out ----------

function showLogin(message, kind = 'err') {
  session.seq++;
  $('#top').hidden = true;
  document.title = `Sign in · ${TITLE}`;
  view.removeAttribute('aria-busy');
  view.innerHTML = `
  <section class="login-wrap panel" aria-labelledby="login-title">
    <h1 id="login-title">Sign in to tollgate</h1>
    <form id="login-form" novalidate>
      <label for="login-user">Email or username</label>
      <input id="login-user" name="user" type="text" autocomplete="username" required autofocus>
      <label for="login-password">Password</label>
      <input id="login-password" name="password" type="password" autocomplete="current-password" required>
      <div class="row"><button id="login-submit" type="submit">Sign in</button></div>
      <div class="status${message ? ' ' + kind : ''}" id="login-error" data-testid="login-error" role="alert">${esc(message || '')}</div>
    </form>
    <p class="muted">API reference: <a href="/swagger/">Swagger UI</a></p>
  </section>`;
  $('#login-user').focus();
  $('#login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('#login-submit');
    const st = $('#login-error');
    btn.disabled = true;
    setStatus(st, 'busy', 'Signing in…');
    try {
      await api('POST', '/login', { user: $('#login-user').value, password: $('#login-password').value });
      await boot();
    } catch (e) {
      setStatus(st, 'err', e.message);
      btn.disabled = false;
    }
  });
}
session.onUnauthorized = (msg) => { session.me = null; showLogin('Your session has ended: ' + msg); };

async function logout() {
  try { await fetch('/logout', { credentials: 'same-origin', redirect: 'manual' }); } catch { /* ignore */ }
  session.me = null;
  history.replaceState(null, '', location.pathname);
  showLogin('You have been signed out.', 'ok');
}

// ---------- shell ----------

function renderShell() {
  const { me } = session;
  const visible = PAGES.filter((p) => p.nav && (me.isGrafanaAdmin || !p.admin));
  $('#nav').innerHTML = visible.map((p) => `<a href="#/${p.path}" data-page="${p.path}">${esc(p.title)}</a>`).join('') +
    '<a href="/swagger/">API (Swagger)</a>';
  $('#whoami').textContent = `${me.login}${me.isGrafanaAdmin ? ' (admin)' : ''}`;
  $('#top').hidden = false;
}

async function boot() {
  // Signed in or not, the page asks who it is; a 401 here means "show the sign-in form".
  try {
    session.me = (await api('GET', '/api/user')).data;
  } catch (e) {
    session.me = null;
    showLogin(e.status === 401 ? '' : e.message);
    return;
  }
  renderShell();
  await route({ focus: false });
}

function notFound(path) {
  document.title = `Not found · ${TITLE}`;
  view.innerHTML = `<h1 id="page-title" tabindex="-1">Not found</h1><p>No page at <code>${esc(path)}</code>. <a href="#/${home(session.me)}">Go to the start page</a>.</p>`;
}

async function route({ focus = true } = {}) {
  if (!session.me) return;
  const seq = ++session.seq;
  const hash = location.hash.replace(/^#\/?/, '') || home(session.me);
  // "audit?action=users:*": the part after "?" is the page's own state (its filters), so a
  // link can open the page in that state.
  const q = hash.indexOf('?');
  const path = q < 0 ? hash : hash.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  // "overview" is the admins' start page; everyone else lands on their account.
  const found = match(path === 'overview' && !session.me.isGrafanaAdmin ? 'account' : path);
  const top = found ? found.page.under || found.page.path.split('/')[0] : '';
  $$('#nav a[data-page]').forEach((a) => (a.getAttribute('data-page') === top ? a.setAttribute('aria-current', 'page') : a.removeAttribute('aria-current')));
  $('#nav').classList.remove('open');
  $('#nav-toggle').setAttribute('aria-expanded', 'false');
  view.setAttribute('aria-busy', 'true');
  view.dataset.route = hash; // which page is (being) shown: tests wait for it with aria-busy
  try {
    if (!found) { notFound(path); return; }
    document.title = `${found.page.title} · ${TITLE}`;
    const mod = await found.page.load();
    if (seq !== session.seq) return;
    const done = mod.default({ params: found.params, page: found.page, query });
    if (focus) { const h = $('#page-title'); if (h) h.focus({ preventScroll: false }); }
    await done;
  } catch (e) {
    if (seq === session.seq) view.insertAdjacentHTML('beforeend', `<div class="status err" role="alert">${esc(e.message)}</div>`);
  } finally {
    if (seq === session.seq) view.setAttribute('aria-busy', 'false');
  }
}

// ---------- start ----------

$('#nav-toggle').addEventListener('click', () => {
  const open = $('#nav').classList.toggle('open');
  $('#nav-toggle').setAttribute('aria-expanded', String(open));
});
$('#logout').addEventListener('click', logout);
window.addEventListener('hashchange', () => route());
boot();
