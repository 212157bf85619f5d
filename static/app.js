// tollgate admin UI: plain ES module, hash routing, talks to the same-origin JSON API
// with the session cookie. Every action reports success or the server's message.

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const view = $('#view');

export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
const fmtDate = (s) => (s ? new Date(s).toLocaleString() : '—');
const yesNo = (b, okWord = 'yes', noWord = 'no') => (b ? `<span class="badge ok">${okWord}</span>` : `<span class="badge">${noWord}</span>`);

let me = null; // current user (GET /api/user)
let renderSeq = 0; // guards against stale async renders after navigation
let pollTimer = null;

class ApiError extends Error {
  constructor(msg, status, data) { super(msg); this.status = status; this.data = data; }
}

export async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(`Network error: ${e.message}`, 0, null);
  }
  const text = await r.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* plain text body */ }
  if (!r.ok) {
    const msg = (data && typeof data === 'object' && data.message) || (typeof data === 'string' && data) || `${r.status} ${r.statusText}`;
    if (r.status === 401 && path !== '/login' && me) {
      me = null;
      showLogin('Your session has ended: ' + msg);
    }
    throw new ApiError(msg, r.status, data);
  }
  return { status: r.status, data };
}

const msgOf = (res, fallback) =>
  (res && res.data && typeof res.data === 'object' && res.data.message) || (res && typeof res.data === 'string' && res.data) || fallback;

function setStatus(el, kind, msg) {
  if (!el) return;
  el.className = 'status ' + kind;
  el.textContent = msg;
}

// Runs an action: disables the button, shows progress, then success or the server's message.
async function act(btn, statusEl, busyMsg, fn, okMsg) {
  if (btn) btn.disabled = true;
  setStatus(statusEl, 'busy', busyMsg || 'Working…');
  try {
    const res = await fn();
    const m = typeof okMsg === 'function' ? okMsg(res) : msgOf(res, okMsg || 'Done');
    setStatus(statusEl, 'ok', m);
    return res;
  } catch (e) {
    setStatus(statusEl, 'err', e.message);
    return null;
  } finally {
    if (btn) btn.disabled = false;
  }
}

const statusLine = (id = 'page-status') => `<div class="status" id="${id}" data-testid="${id}" role="status" aria-live="polite"></div>`;
const skeletonRows = (n = 3, cols = 4) => Array.from({ length: n }, () => `<tr>${'<td><div class="skeleton">&nbsp;</div></td>'.repeat(cols)}</tr>`).join('');

// ---------- sign in / out ----------

function showLogin(message) {
  clearPoll();
  $('#top').hidden = true;
  view.innerHTML = `
  <section class="login-wrap panel" aria-labelledby="login-title">
    <h1 id="login-title">Sign in to tollgate</h1>
    <form id="login-form" novalidate>
      <label for="login-user">Email or username</label>
      <input id="login-user" name="user" type="text" autocomplete="username" required autofocus>
      <label for="login-password">Password</label>
      <input id="login-password" name="password" type="password" autocomplete="current-password" required>
      <div class="row"><button id="login-submit" type="submit">Sign in</button></div>
      <div class="status${message ? ' err' : ''}" id="login-error" data-testid="login-error" role="alert">${esc(message || '')}</div>
    </form>
    <p class="muted">API reference: <a href="/swagger/">Swagger UI</a></p>
  </section>`;
  const form = $('#login-form');
  $('#login-user').focus();
  form.addEventListener('submit', async (ev) => {
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

async function logout() {
  try { await fetch('/logout', { credentials: 'same-origin', redirect: 'manual' }); } catch { /* ignore */ }
  me = null;
  location.hash = '';
  showLogin('You have been signed out.');
  const st = $('#login-error'); if (st) st.className = 'status ok';
}

// ---------- shell ----------

const ADMIN_PAGES = [
  ['overview', 'Overview'], ['users', 'Users'], ['settings', 'Settings'], ['license', 'License'],
  ['encryption', 'Encryption'], ['provisioning', 'Provisioning'], ['alerts', 'Alerts'], ['access', 'Roles & service accounts'],
];
const USER_PAGES = [['overview', 'My account']];

function renderShell() {
  const pages = me.isGrafanaAdmin ? ADMIN_PAGES : USER_PAGES;
  $('#nav').innerHTML = pages.map(([k, t]) => `<a href="#/${k}" data-page="${k}">${esc(t)}</a>`).join('') +
    '<a href="/swagger/">API (Swagger)</a>';
  $('#whoami').textContent = `${me.login}${me.isGrafanaAdmin ? ' (admin)' : ''}`;
  $('#top').hidden = false;
}

function clearPoll() { if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; } }

async function boot() {
  try {
    const res = await api('GET', '/api/user');
    me = res.data;
  } catch (e) {
    me = null;
    showLogin(e.status === 401 ? '' : e.message);
    return;
  }
  renderShell();
  route();
}

const routes = [
  [/^\/?(overview)?$/, (m) => (me.isGrafanaAdmin ? pageOverview() : pageMyAccount())],
  [/^\/users$/, () => pageUsers()],
  [/^\/users\/(\d+)$/, (m) => pageUser(Number(m[1]))],
  [/^\/settings$/, () => pageSettings()],
  [/^\/license$/, () => pageLicense()],
  [/^\/encryption$/, () => pageEncryption()],
  [/^\/provisioning$/, () => pageProvisioning()],
  [/^\/alerts$/, () => pageAlerts()],
  [/^\/access$/, () => pageAccess()],
];

function route() {
  if (!me) return;
  clearPoll();
  renderSeq++;
  const path = location.hash.replace(/^#/, '');
  const page = path.split('/')[1] || 'overview';
  $$('#nav a[data-page]').forEach((a) => (a.getAttribute('data-page') === page ? a.setAttribute('aria-current', 'page') : a.removeAttribute('aria-current')));
  $('#nav').classList.remove('open');
  $('#nav-toggle').setAttribute('aria-expanded', 'false');
  for (const [re, fn] of routes) {
    const m = path.match(re);
    if (m) {
      if (!me.isGrafanaAdmin && path && !/^\/?(overview)?$/.test(path)) break;
      fn(m);
      return;
    }
  }
  view.innerHTML = `<h1>Not found</h1><p>No page at <code>${esc(path)}</code>. <a href="#/overview">Go to the overview</a>.</p>`;
}

// Loads data for the current page; returns null if the user navigated away meanwhile.
async function load(fn) {
  const seq = renderSeq;
  const out = await fn();
  return seq === renderSeq ? out : null;
}
const tryGet = async (path) => { try { return { ok: true, data: (await api('GET', path)).data }; } catch (e) { return { ok: false, error: e }; } };

// ---------- overview ----------

function licenseWarnings(st) {
  const w = [];
  if (st.licenseExpiry && st.licenseExpiry.warning) w.push(`The license expires in ${st.licenseExpiry.daysLeft} day(s) (${fmtDate(st.licenseExpiry.at)}).`);
  if (st.tokenExpiry && st.tokenExpiry.warning) w.push(`The license token expires in ${st.tokenExpiry.daysLeft} day(s) (${fmtDate(st.tokenExpiry.at)}); renew it.`);
  if (st.seats && st.seats.overLimit) w.push('More users than the license includes.');
  if (st.state && !['valid', 'missing'].includes(st.state)) w.push(`License state: ${st.state}${st.reason ? ' — ' + st.reason : ''}`);
  // In-flow block (never an overlay) so upload/renew controls stay reachable.
  return w.length ? `<div class="warning" role="alert" data-testid="license-warning">${w.map((x) => `<div>${esc(x)}</div>`).join('')}</div>` : '';
}

async function pageOverview() {
  view.innerHTML = `<h1>Overview</h1>${statusLine()}
    <section class="panel"><h2>Usage</h2><div class="cards" id="stats">${'<div class="card skeleton">&nbsp;<br>&nbsp;</div>'.repeat(8)}</div></section>
    <section class="panel" style="min-height:8rem"><h2>License</h2><div id="lic-summary"><div class="skeleton">&nbsp;</div></div></section>`;
  const out = await load(() => Promise.all([tryGet('/api/admin/stats'), tryGet('/api/licensing/status')]));
  if (!out) return;
  const [stats, lic] = out;
  if (stats.ok) {
    const s = stats.data;
    const keys = [['users', 'Users'], ['admins', 'Admins'], ['editors', 'Editors'], ['viewers', 'Viewers'], ['activeUsers', 'Active users'], ['activeSessions', 'Active sessions'], ['datasources', 'Data sources'], ['dashboards', 'Dashboards'], ['alerts', 'Alerts'], ['orgs', 'Orgs']];
    $('#stats').innerHTML = keys.filter(([k]) => k in s).map(([k, t]) => `<div class="card" data-testid="stat-${k}"><b>${esc(s[k])}</b><span>${esc(t)}</span></div>`).join('');
  } else $('#stats').innerHTML = `<div class="status err">${esc(stats.error.message)}</div>`;
  if (lic.ok) {
    const st = lic.data;
    $('#lic-summary').innerHTML = `${licenseWarnings(st)}<dl class="kv">
      <dt>State</dt><dd><span class="badge ${st.state === 'valid' ? 'ok' : 'warn'}">${esc(st.state)}</span> ${esc(st.reason || '')}</dd>
      <dt>Source</dt><dd>${esc(st.source)}</dd>
      <dt>License expiry</dt><dd>${st.licenseExpiry ? `${fmtDate(st.licenseExpiry.at)} (${esc(st.licenseExpiry.daysLeft)} days)` : '—'}</dd>
      <dt>Seats</dt><dd>${st.seats ? `${esc(st.seats.users)} users of ${esc(st.seats.includedUsers)} included` : '—'}</dd>
    </dl><p><a href="#/license">Manage the license</a></p>`;
  } else $('#lic-summary').innerHTML = `<div class="status err">${esc(lic.error.message)}</div>`;
}

async function pageMyAccount() {
  view.innerHTML = `<h1>My account</h1>${statusLine()}
    <section class="panel"><dl class="kv" id="me-info">
      <dt>Login</dt><dd>${esc(me.login)}</dd><dt>Name</dt><dd>${esc(me.name || '—')}</dd><dt>Email</dt><dd>${esc(me.email)}</dd>
      <dt>Grafana admin</dt><dd>${yesNo(me.isGrafanaAdmin)}</dd></dl>
      <p class="muted">Administration pages need a Grafana Admin account.</p></section>
    <section class="panel"><h2>My sessions</h2><div class="table-wrap"><table><thead><tr><th>Created</th><th>Last seen</th><th>Client</th><th>Current</th></tr></thead>
      <tbody id="my-sessions">${skeletonRows(2, 4)}</tbody></table></div></section>`;
  const r = await load(() => tryGet('/api/user/auth-tokens'));
  if (!r) return;
  if (!r.ok) { setStatus($('#page-status'), 'err', r.error.message); $('#my-sessions').innerHTML = ''; return; }
  $('#my-sessions').innerHTML = r.data.map((t) => `<tr><td>${fmtDate(t.createdAt)}</td><td>${fmtDate(t.seenAt)}</td><td>${esc(t.browser)} ${esc(t.browserVersion)} · ${esc(t.os)} · ${esc(t.clientIp)}</td><td>${yesNo(t.isActive)}</td></tr>`).join('') || '<tr><td colspan="4" class="muted">No sessions</td></tr>';
}

// ---------- users ----------

const usersState = { page: 1, perPage: 20, query: '' };

async function pageUsers() {
  view.innerHTML = `<h1>Users</h1>${statusLine()}
  <div class="grid2" style="grid-template-columns:2fr 1fr">
    <section class="panel">
      <form id="user-search-form" role="search" class="row" style="margin-top:0">
        <div><label for="user-search">Search users</label><input id="user-search" type="search" value="${esc(usersState.query)}" placeholder="login, email or name"></div>
        <button type="submit" id="user-search-submit">Search</button>
      </form>
      <div class="table-wrap" style="min-height:22rem;margin-top:.6rem"><table id="users-table">
        <thead><tr><th>Login</th><th>Name</th><th>Email</th><th>Admin</th><th>Status</th><th>Last seen</th></tr></thead>
        <tbody id="users-body">${skeletonRows(6, 6)}</tbody></table></div>
      <div class="row" style="align-items:center">
        <button type="button" class="secondary" id="users-prev">Previous</button>
        <span id="users-pageinfo" class="muted" aria-live="polite">&nbsp;</span>
        <button type="button" class="secondary" id="users-next">Next</button>
      </div>
    </section>
    <section class="panel">
      <h2>Create user</h2>
      <form id="new-user-form">
        <label for="new-user-name">Name</label><input id="new-user-name" type="text" autocomplete="off">
        <label for="new-user-email">Email</label><input id="new-user-email" type="email" autocomplete="off">
        <label for="new-user-login">Login</label><input id="new-user-login" type="text" autocomplete="off" required>
        <label for="new-user-password">Password</label><input id="new-user-password" type="password" autocomplete="new-password" required>
        <div class="row"><button type="submit" id="new-user-submit">Create user</button></div>
        ${statusLine('new-user-status')}
      </form>
    </section>
  </div>`;
  const refresh = async () => {
    const q = new URLSearchParams({ perpage: usersState.perPage, page: usersState.page, query: usersState.query });
    const r = await load(() => tryGet('/api/users/search?' + q));
    if (!r) return;
    if (!r.ok) { $('#users-body').innerHTML = ''; setStatus($('#page-status'), 'err', r.error.message); return; }
    const d = r.data;
    $('#users-body').innerHTML = d.users.map((u) => `<tr data-testid="user-row-${esc(u.login)}">
      <td><a href="#/users/${u.id}" data-testid="user-link-${esc(u.login)}">${esc(u.login)}</a></td><td>${esc(u.name)}</td><td>${esc(u.email)}</td>
      <td>${yesNo(u.isAdmin)}</td><td>${u.isDisabled ? '<span class="badge err">disabled</span>' : '<span class="badge ok">active</span>'}</td><td>${esc(u.lastSeenAtAge || '')}</td></tr>`).join('') ||
      '<tr><td colspan="6" class="muted">No users match.</td></tr>';
    const pages = Math.max(1, Math.ceil(d.totalCount / d.perPage));
    $('#users-pageinfo').textContent = `Page ${d.page} of ${pages} · ${d.totalCount} users`;
    $('#users-prev').disabled = d.page <= 1;
    $('#users-next').disabled = d.page >= pages;
  };
  $('#user-search-form').addEventListener('submit', (e) => { e.preventDefault(); usersState.query = $('#user-search').value; usersState.page = 1; refresh(); });
  $('#users-prev').addEventListener('click', () => { usersState.page = Math.max(1, usersState.page - 1); refresh(); });
  $('#users-next').addEventListener('click', () => { usersState.page += 1; refresh(); });
  $('#new-user-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: $('#new-user-name').value, email: $('#new-user-email').value, login: $('#new-user-login').value, password: $('#new-user-password').value };
    const res = await act($('#new-user-submit'), $('#new-user-status'), 'Creating user…', () => api('POST', '/api/admin/users', body), (r) => `${msgOf(r, 'User created')} (id ${r.data.id})`);
    if (res) { e.target.reset(); refresh(); }
  });
  refresh();
}

async function pageUser(id) {
  view.innerHTML = `<p><a href="#/users">← Users</a></p><h1 id="user-title">User #${id}</h1>${statusLine()}
  <div class="grid2">
    <section class="panel" style="min-height:16rem"><h2>Profile</h2>
      <form id="profile-form">
        <label for="edit-name">Name</label><input id="edit-name" type="text">
        <label for="edit-email">Email</label><input id="edit-email" type="email">
        <label for="edit-login">Login</label><input id="edit-login" type="text">
        <div class="row"><button type="submit" id="edit-save">Save profile</button></div>
      </form></section>
    <section class="panel"><h2>Password &amp; permissions</h2>
      <form id="password-form">
        <label for="new-password">New password</label><input id="new-password" type="password" autocomplete="new-password" required>
        <div class="row"><button type="submit" id="password-save">Reset password</button></div>
      </form>
      <h3>Permissions</h3>
      <label class="inline" for="perm-admin"><input type="checkbox" id="perm-admin"> Grafana Admin</label>
      <div class="row"><button type="button" id="perm-save">Save permissions</button></div>
      <h3>Account</h3>
      <div class="row"><button type="button" class="secondary" id="toggle-disabled">Disable</button>
        <button type="button" class="danger" id="delete-user">Delete user</button></div>
    </section>
  </div>
  <section class="panel"><h2>Roles</h2>
    <div id="user-roles" class="muted" style="min-height:1.5rem">Loading…</div>
    <form id="assign-form" class="row">
      <div><label for="assign-role">Assign role</label><select id="assign-role"><option value="">Loading roles…</option></select></div>
      <button type="submit" id="assign-role-submit">Assign</button>
    </form></section>
  <section class="panel"><h2>Sessions</h2>
    <div class="table-wrap"><table id="sessions-table"><thead><tr><th>ID</th><th>Created</th><th>Last seen</th><th>IP</th><th>Browser</th><th>OS / device</th><th>Active</th><th><span class="sr">Actions</span></th></tr></thead>
      <tbody id="sessions-body">${skeletonRows(2, 8)}</tbody></table></div>
    <div class="row"><button type="button" class="danger" id="logout-everywhere">Sign out everywhere</button>
      <button type="button" class="secondary" id="sessions-refresh">Refresh sessions</button></div>
  </section>`;
  const st = $('#page-status');
  let user = null;
  const loadUser = async () => {
    const r = await load(() => tryGet(`/api/users/${id}`));
    if (!r) return;
    if (!r.ok) { setStatus(st, 'err', r.error.message); return; }
    user = r.data;
    $('#user-title').textContent = `User ${user.login}`;
    $('#edit-name').value = user.name || ''; $('#edit-email').value = user.email || ''; $('#edit-login').value = user.login || '';
    $('#perm-admin').checked = !!user.isGrafanaAdmin;
    $('#toggle-disabled').textContent = user.isDisabled ? 'Enable' : 'Disable';
  };
  const loadSessions = async () => {
    const r = await load(() => tryGet(`/api/admin/users/${id}/auth-tokens`));
    if (!r) return;
    if (!r.ok) { $('#sessions-body').innerHTML = `<tr><td colspan="8" class="status err">${esc(r.error.message)}</td></tr>`; return; }
    $('#sessions-body').innerHTML = r.data.map((t) => `<tr data-testid="session-row-${t.id}">
      <td>${t.id}</td><td>${fmtDate(t.createdAt)}</td><td>${fmtDate(t.seenAt)}</td><td>${esc(t.clientIp)}</td>
      <td>${esc(t.browser)} ${esc(t.browserVersion)}</td><td>${esc(t.os)} ${esc(t.osVersion)} ${esc(t.device)}</td><td>${yesNo(t.isActive)}</td>
      <td><button type="button" class="btn-small secondary" data-revoke="${t.id}" data-testid="revoke-${t.id}" aria-label="Revoke session ${t.id}">Revoke</button></td></tr>`).join('') ||
      '<tr><td colspan="8" class="muted" data-testid="no-sessions">No sessions</td></tr>';
  };
  const loadRoles = async () => {
    const [all, mine] = await Promise.all([tryGet('/api/access-control/roles'), tryGet(`/api/access-control/users/${id}/roles`)]);
    if (all.ok) $('#assign-role').innerHTML = '<option value="">Choose a role…</option>' + all.data.map((r) => `<option value="${esc(r.uid)}">${esc(r.displayName || r.name)} (${esc(r.uid)})</option>`).join('');
    else $('#assign-role').innerHTML = `<option value="">${esc(all.error.message)}</option>`;
    $('#user-roles').innerHTML = mine.ok ? (mine.data.length ? mine.data.map((r) => `<span class="badge">${esc(r.displayName || r.name)}</span>`).join(' ') : 'No roles assigned directly.') : `<span class="status err">${esc(mine.error.message)}</span>`;
  };
  $('#profile-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: $('#edit-name').value, email: $('#edit-email').value, login: $('#edit-login').value };
    if (await act($('#edit-save'), st, 'Saving profile…', () => api('PUT', `/api/users/${id}`, body), 'User updated')) loadUser();
  });
  $('#password-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await act($('#password-save'), st, 'Resetting password…', () => api('PUT', `/api/admin/users/${id}/password`, { password: $('#new-password').value }), 'Password updated')) $('#new-password').value = '';
  });
  $('#perm-save').addEventListener('click', async (e) => {
    if (await act(e.target, st, 'Saving permissions…', () => api('PUT', `/api/admin/users/${id}/permissions`, { isGrafanaAdmin: $('#perm-admin').checked }), 'Permissions updated')) loadUser();
  });
  $('#toggle-disabled').addEventListener('click', async (e) => {
    if (!user) return;
    const action = user.isDisabled ? 'enable' : 'disable';
    if (await act(e.target, st, `${action === 'enable' ? 'Enabling' : 'Disabling'} user…`, () => api('POST', `/api/admin/users/${id}/${action}`), `User ${action}d`)) { loadUser(); loadSessions(); }
  });
  $('#delete-user').addEventListener('click', async (e) => {
    if (!confirm(`Delete user ${user ? user.login : '#' + id}? This cannot be undone.`)) { setStatus(st, 'busy', 'Delete cancelled.'); return; }
    if (await act(e.target, st, 'Deleting user…', () => api('DELETE', `/api/admin/users/${id}`), 'User deleted')) {
      setTimeout(() => { location.hash = '#/users'; }, 800);
    }
  });
  $('#assign-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const roleUid = $('#assign-role').value;
    if (!roleUid) { setStatus(st, 'err', 'Choose a role first.'); return; }
    if (await act($('#assign-role-submit'), st, 'Assigning role…', () => api('POST', `/api/access-control/users/${id}/roles`, { roleUid }), 'Role assigned')) loadRoles();
  });
  $('#sessions-body').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-revoke]');
    if (!b) return;
    const tid = Number(b.dataset.revoke);
    if (await act(b, st, 'Revoking session…', () => api('POST', `/api/admin/users/${id}/revoke-auth-token`, { authTokenId: tid }), 'Session revoked')) loadSessions();
  });
  $('#logout-everywhere').addEventListener('click', async (e) => {
    if (!confirm('Sign this user out of every session?')) { setStatus(st, 'busy', 'Cancelled.'); return; }
    if (await act(e.target, st, 'Signing out everywhere…', () => api('POST', `/api/admin/users/${id}/logout`), 'User signed out everywhere')) loadSessions();
  });
  $('#sessions-refresh').addEventListener('click', loadSessions);
  await loadUser();
  loadSessions();
  loadRoles();
}

// ---------- settings ----------

async function pageSettings() {
  view.innerHTML = `<h1>Settings</h1>${statusLine()}
  <section class="panel" style="min-height:10rem"><h2>SAML (auth.saml)</h2>
    <p class="muted">Edit values, tick "remove" to delete a key, then review the changes before saving.</p>
    <div class="table-wrap"><table><thead><tr><th>Key</th><th>Value</th><th>Source</th><th>Remove</th></tr></thead><tbody id="saml-body">${skeletonRows(3, 4)}</tbody></table></div>
    <div class="row">
      <div><label for="saml-new-key">New key</label><input id="saml-new-key" type="text"></div>
      <div><label for="saml-new-value">Value</label><input id="saml-new-value" type="text"></div>
      <button type="button" class="secondary" id="saml-add">Add key</button>
    </div>
    <div class="row"><button type="button" id="saml-review">Review changes</button><button type="button" id="saml-save" disabled>Save changes</button></div>
    <div id="saml-diff" class="diff" data-testid="saml-diff"></div>
  </section>
  <section class="panel"><h2>All settings</h2><div id="all-settings"><div class="skeleton">&nbsp;</div></div></section>`;
  const st = $('#page-status');
  let original = {};
  let pending = null;
  const render = async () => {
    const r = await load(() => tryGet('/api/admin/settings-verbose'));
    if (!r) return;
    if (!r.ok) { setStatus(st, 'err', r.error.message); $('#saml-body').innerHTML = ''; $('#all-settings').innerHTML = ''; return; }
    const saml = r.data['auth.saml'] || {};
    original = Object.fromEntries(Object.entries(saml).map(([k, v]) => [k, v.value]));
    $('#saml-body').innerHTML = Object.keys(saml).sort().map((k, i) => `<tr data-key="${esc(k)}">
      <td><code>${esc(k)}</code></td>
      <td><input type="text" id="saml-val-${i}" data-key="${esc(k)}" class="saml-val" aria-label="Value of ${esc(k)}" value="${esc(saml[k].value)}"></td>
      <td><span class="badge">${esc(saml[k].source)}</span></td>
      <td><input type="checkbox" class="saml-rm" data-key="${esc(k)}" aria-label="Remove ${esc(k)}"></td></tr>`).join('') || '<tr><td colspan="4" class="muted">No auth.saml keys yet.</td></tr>';
    $('#all-settings').innerHTML = Object.keys(r.data).sort().map((sec) => `<details><summary>${esc(sec)}</summary><div class="table-wrap"><table>
      <thead><tr><th>Key</th><th>Value</th><th>Source</th></tr></thead><tbody>${Object.entries(r.data[sec]).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v.value)}</td><td>${esc(v.source)}</td></tr>`).join('')}</tbody></table></div></details>`).join('');
    pending = null; $('#saml-save').disabled = true; $('#saml-diff').innerHTML = '';
  };
  const invalidate = () => { pending = null; $('#saml-save').disabled = true; };
  $('#saml-body').addEventListener('input', invalidate);
  $('#saml-add').addEventListener('click', () => {
    const k = $('#saml-new-key').value.trim();
    if (!k) { setStatus(st, 'err', 'Enter a key name.'); return; }
    if ($(`#saml-body input.saml-val[data-key="${CSS.escape(k)}"]`)) { setStatus(st, 'err', `Key ${k} already exists; edit it in the table.`); return; }
    const empty = $('#saml-body td[colspan]'); if (empty) empty.parentElement.remove();
    const i = $$('#saml-body tr').length + 1000;
    $('#saml-body').insertAdjacentHTML('beforeend', `<tr data-key="${esc(k)}"><td><code>${esc(k)}</code> <span class="badge warn">new</span></td>
      <td><input type="text" id="saml-val-${i}" data-key="${esc(k)}" class="saml-val" aria-label="Value of ${esc(k)}" value="${esc($('#saml-new-value').value)}"></td><td></td>
      <td><input type="checkbox" class="saml-rm" data-key="${esc(k)}" aria-label="Remove ${esc(k)}"></td></tr>`);
    $('#saml-new-key').value = ''; $('#saml-new-value').value = '';
    setStatus(st, 'ok', `Key ${k} added to the editor; review and save to apply.`);
    invalidate();
  });
  $('#saml-review').addEventListener('click', () => {
    const updates = {}; const removals = [];
    const lines = [];
    $$('#saml-body input.saml-val').forEach((inp) => {
      const k = inp.dataset.key;
      const rm = $(`#saml-body input.saml-rm[data-key="${CSS.escape(k)}"]`).checked;
      if (rm) { if (k in original) { removals.push(k); lines.push(`<li><code>${esc(k)}</code>: <del>${esc(original[k])}</del> → <em>removed</em></li>`); } return; }
      if (!(k in original) || original[k] !== inp.value) {
        updates[k] = inp.value;
        lines.push(`<li><code>${esc(k)}</code>: <del>${k in original ? esc(original[k]) : '(unset)'}</del> → <ins>${esc(inp.value)}</ins></li>`);
      }
    });
    if (!lines.length) { $('#saml-diff').innerHTML = '<p class="muted">No changes.</p>'; pending = null; $('#saml-save').disabled = true; return; }
    pending = { updates: Object.keys(updates).length ? { 'auth.saml': updates } : {}, removals: removals.length ? { 'auth.saml': removals } : {} };
    $('#saml-diff').innerHTML = `<h3>Changes to save</h3><ul>${lines.join('')}</ul>`;
    $('#saml-save').disabled = false;
    $('#saml-save').focus();
  });
  $('#saml-save').addEventListener('click', async (e) => {
    if (!pending) return;
    if (await act(e.target, st, 'Saving settings…', () => api('PUT', '/api/admin/settings', pending), 'Settings saved')) {
      const m = st.textContent; await render(); setStatus(st, 'ok', m);
    } else e.target.disabled = false;
  });
  render();
}

// ---------- license ----------

async function pageLicense() {
  view.innerHTML = `<h1>License</h1>${statusLine()}
  <div id="lic-warnings"></div>
  <div class="grid2">
    <section class="panel" style="min-height:14rem"><h2>Status</h2><div id="lic-status"><div class="skeleton">&nbsp;</div><div class="skeleton" style="margin-top:.4rem">&nbsp;</div></div>
      <h3>Last renewal</h3><div id="lic-renewal" class="muted">&nbsp;</div></section>
    <section class="panel"><h2>Upload or renew</h2>
      <form id="lic-upload-form">
        <label for="license-token">License token (JWT)</label><textarea id="license-token" required spellcheck="false"></textarea>
        <div class="row"><button type="submit" id="license-upload">Upload token</button>
          <button type="button" class="secondary" id="license-renew">Renew now</button></div>
      </form>
      <h3>Remove license</h3>
      <form id="lic-remove-form">
        <label for="license-instance">Instance URL (this server's root_url)</label><input id="license-instance" type="url" required>
        <div class="row"><button type="submit" class="danger" id="license-remove">Remove license</button></div>
      </form>
    </section>
  </div>
  <section class="panel" style="min-height:5rem"><h2>Token claims</h2><div id="lic-claims"><div class="skeleton">&nbsp;</div></div></section>`;
  const st = $('#page-status');
  const refresh = async () => {
    const out = await load(() => Promise.all([tryGet('/api/licensing/status'), tryGet('/api/licensing/token')]));
    if (!out) return;
    const [s, t] = out;
    if (s.ok) {
      const d = s.data;
      $('#lic-warnings').innerHTML = licenseWarnings(d);
      const exp = (e) => (e ? `${fmtDate(e.at)} · ${esc(e.daysLeft)} days left${e.warning ? ' <span class="badge warn">warning</span>' : ''}` : '—');
      $('#lic-status').innerHTML = `<dl class="kv" data-testid="license-status">
        <dt>State</dt><dd><span class="badge ${d.state === 'valid' ? 'ok' : 'warn'}" data-testid="license-state">${esc(d.state)}</span></dd>
        <dt>Reason</dt><dd>${esc(d.reason || '—')}</dd><dt>Source</dt><dd>${esc(d.source)}</dd>
        <dt>License ID</dt><dd>${esc(d.licenseId || '—')}</dd><dt>Company</dt><dd>${esc(d.company || '—')}</dd>
        <dt>Instance</dt><dd>${esc(d.instance || '—')}</dd>
        <dt>License expiry</dt><dd>${exp(d.licenseExpiry)}</dd><dt>Token expiry</dt><dd>${exp(d.tokenExpiry)}</dd>
        <dt>Seats</dt><dd>${d.seats ? `users ${esc(d.seats.users)}/${esc(d.seats.includedUsers)}, admins+editors ${esc(d.seats.adminsAndEditors)}/${esc(d.seats.includedAdmins)}, viewers ${esc(d.seats.viewers)}/${esc(d.seats.includedViewers)}${d.seats.overLimit ? ' <span class="badge err">over limit</span>' : ''}` : '—'}</dd>
        <dt>Auto refresh</dt><dd>${yesNo(d.autoRefresh)}${d.nextRenewalAt ? ' · next ' + fmtDate(d.nextRenewalAt) : ''}</dd></dl>`;
      const lr = d.lastRenewal;
      $('#lic-renewal').innerHTML = lr ? `${fmtDate(lr.at)} (${esc(lr.trigger)}) — ${lr.ok ? '<span class="badge ok">ok</span>' : `<span class="badge err">failed</span> ${esc(lr.error)}`}` : 'No renewal attempted yet.';
      if (!$('#license-instance').value) $('#license-instance').value = d.instance || '';
    } else { $('#lic-status').innerHTML = ''; setStatus(st, 'err', s.error.message); }
    if (t.ok) $('#lic-claims').innerHTML = `<dl class="kv">${Object.entries(t.data).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === 'object' ? JSON.stringify(v) : (['exp', 'iat', 'nbf', 'lexp'].includes(k) && typeof v === 'number' ? `${v} (${new Date(v * 1000).toLocaleString()})` : v))}</dd>`).join('')}</dl>`;
    else $('#lic-claims').innerHTML = `<p class="muted" data-testid="no-token">${esc(t.error.message)}</p>`;
  };
  $('#lic-upload-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await act($('#license-upload'), st, 'Uploading token…', () => api('POST', '/api/licensing/token', { token: $('#license-token').value.trim() }), 'License token uploaded')) { $('#license-token').value = ''; refresh(); }
  });
  $('#license-renew').addEventListener('click', async (e) => {
    await act(e.target, st, 'Renewing…', () => api('POST', '/api/licensing/token/renew', {}), 'License renewed');
    refresh();
  });
  $('#lic-remove-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const instance = $('#license-instance').value.trim();
    if (!confirm(`Remove the license for ${instance}?`)) { setStatus(st, 'busy', 'Removal cancelled.'); return; }
    if (await act($('#license-remove'), st, 'Removing license…', () => api('DELETE', '/api/licensing/token', { instance }), (r) => msgOf(r, `License removed (HTTP ${r.status})`))) refresh();
  });
  refresh();
}

// ---------- encryption ----------

async function pageEncryption() {
  view.innerHTML = `<h1>Encryption</h1>${statusLine()}
  <section class="panel"><h2>Actions</h2>
    <div class="row" style="margin-top:0">
      <button type="button" id="enc-rotate">Rotate data keys</button>
      <button type="button" id="enc-reencrypt-secrets">Re-encrypt secrets</button>
      <button type="button" id="enc-reencrypt-datakeys">Re-encrypt data keys</button>
    </div></section>
  <section class="panel" style="min-height:7rem"><h2>Re-encryption job</h2><div id="enc-job"><div class="skeleton">&nbsp;</div></div></section>
  <section class="panel"><h2>Data keys</h2><p id="enc-meta" class="muted">&nbsp;</p>
    <div class="table-wrap"><table><thead><tr><th>ID</th><th>State</th><th>Created</th><th>Retired</th><th>KEK</th><th>References</th><th>Reserved</th></tr></thead>
    <tbody id="enc-keys">${skeletonRows(2, 7)}</tbody></table></div></section>`;
  const st = $('#page-status');
  const seq = renderSeq;
  const refresh = async () => {
    const r = await tryGet('/api/admin/encryption/status');
    if (seq !== renderSeq) return null;
    if (!r.ok) { setStatus(st, 'err', r.error.message); return null; }
    const d = r.data; const j = d.reencryption || {};
    $('#enc-meta').textContent = `Active data key: ${d.activeDataKeyId ?? '—'} · key encryption key: ${d.kekId || '—'}`;
    $('#enc-keys').innerHTML = (d.dataKeys || []).map((k) => `<tr data-testid="datakey-${k.id}"><td>${k.id}</td><td><span class="badge ${k.state === 'active' ? 'ok' : ''}">${esc(k.state)}</span></td>
      <td>${fmtDate(k.created)}</td><td>${k.retired ? fmtDate(k.retired) : '—'}</td><td>${esc(k.kekId)}</td><td class="num">${esc(k.references)}</td><td class="num">${esc(k.encryptionsReserved)}</td></tr>`).join('') || '<tr><td colspan="7" class="muted">No data keys</td></tr>';
    const pct = j.total ? Math.round((100 * j.processed) / j.total) : (j.running ? 0 : 100);
    $('#enc-job').innerHTML = `<p>${j.running ? '<span class="badge warn">running</span>' : '<span class="badge">idle</span>'}${j.resumed ? ' (resumed)' : ''}
      ${j.startedAt ? ' · started ' + fmtDate(j.startedAt) : ''}${j.finishedAt ? ' · finished ' + fmtDate(j.finishedAt) : ''}</p>
      <label for="enc-progress">Progress: ${esc(j.processed || 0)} of ${esc(j.total || 0)} (updated ${esc(j.updated || 0)}, skipped ${esc(j.skipped || 0)}, failed ${(j.failed || []).length})</label>
      <progress id="enc-progress" max="100" value="${pct}">${pct}%</progress>
      ${(j.failed || []).length ? `<details><summary>Failures</summary><pre>${esc(JSON.stringify(j.failed, null, 2))}</pre></details>` : ''}`;
    return d;
  };
  // Poll while a job runs (started by us or someone else).
  const poll = async () => {
    const d = await refresh();
    if (seq !== renderSeq) return;
    if (d && d.reencryption && d.reencryption.running) pollTimer = setTimeout(poll, 1000);
  };
  const run = async (btn, busy, path, ok) => {
    const buttons = $$('#enc-rotate, #enc-reencrypt-secrets, #enc-reencrypt-datakeys');
    buttons.forEach((b) => (b.disabled = true));
    let polling = true;
    const tick = async () => { if (!polling) return; await refresh(); if (polling && seq === renderSeq) setTimeout(tick, 700); };
    setTimeout(tick, 300);
    await act(btn, st, busy, () => api('POST', path), (r) => (r.status === 206 ? `Partly done: ${msgOf(r, 'some items failed')}` : msgOf(r, ok)));
    polling = false;
    buttons.forEach((b) => (b.disabled = false));
    poll();
  };
  $('#enc-rotate').addEventListener('click', (e) => run(e.target, 'Rotating data keys…', '/api/admin/encryption/rotate-data-keys', 'Data keys rotated'));
  $('#enc-reencrypt-secrets').addEventListener('click', (e) => run(e.target, 'Re-encrypting secrets…', '/api/admin/encryption/reencrypt-secrets', 'Secrets re-encrypted'));
  $('#enc-reencrypt-datakeys').addEventListener('click', (e) => run(e.target, 'Re-encrypting data keys…', '/api/admin/encryption/reencrypt-data-keys', 'Data keys re-encrypted'));
  poll();
}

// ---------- provisioning & LDAP ----------

const PROV_KINDS = [['dashboards', 'Dashboards'], ['datasources', 'Datasources'], ['plugins', 'Plugins'], ['notifications', 'Notifications'], ['access-control', 'Access control']];

async function pageProvisioning() {
  view.innerHTML = `<h1>Provisioning</h1>${statusLine()}
  <section class="panel"><h2>Reload</h2><div class="row" style="margin-top:0" id="prov-buttons">
    ${PROV_KINDS.map(([k, t]) => `<button type="button" id="reload-${k}" data-kind="${k}">Reload ${esc(t.toLowerCase())}</button>`).join('')}</div></section>
  <section class="panel" style="min-height:12rem"><h2>Last runs</h2><div class="table-wrap"><table><thead><tr><th>Kind</th><th>At</th><th>Result</th><th>Applied</th><th>Removed</th><th>Files</th></tr></thead>
    <tbody id="prov-body">${skeletonRows(5, 6)}</tbody></table></div></section>
  <section class="panel"><h2>LDAP</h2>
    <div class="row" style="margin-top:0"><button type="button" id="ldap-reload">Reload LDAP config</button></div>
    ${statusLine('ldap-status-line')}
    <div id="ldap-status" style="min-height:2rem"><div class="skeleton">&nbsp;</div></div></section>`;
  const st = $('#page-status');
  const refresh = async () => {
    const r = await load(() => tryGet('/api/admin/provisioning/status'));
    if (!r) return;
    if (!r.ok) { $('#prov-body').innerHTML = ''; setStatus(st, 'err', r.error.message); return; }
    $('#prov-body').innerHTML = Object.entries(r.data).map(([k, v]) => `<tr data-testid="prov-${esc(k)}"><td>${esc(k)}</td><td>${fmtDate(v.at)}</td>
      <td>${v.ok ? '<span class="badge ok">ok</span>' : `<span class="badge err">failed</span> ${esc(v.error)}`}</td><td class="num">${esc(v.applied)}</td><td class="num">${esc(v.removed)}</td>
      <td>${(v.files || []).length ? `<ul>${v.files.map((f) => `<li>${f.ok ? '✓' : '✗'} ${esc(f.file)}${f.message ? ' — ' + esc(f.message) : ''}</li>`).join('')}</ul>` : '<span class="muted">none</span>'}</td></tr>`).join('');
  };
  const ldap = async () => {
    const r = await load(() => tryGet('/api/admin/ldap/status'));
    if (!r) return;
    $('#ldap-status').innerHTML = r.ok
      ? `<table><thead><tr><th>Host</th><th>Port</th><th>Available</th><th>Error</th></tr></thead><tbody>${(Array.isArray(r.data) ? r.data : [r.data]).map((s) => `<tr><td>${esc(s.host)}</td><td>${esc(s.port)}</td><td>${yesNo(s.available)}</td><td>${esc(s.error || '')}</td></tr>`).join('')}</tbody></table>`
      : `<p class="muted" data-testid="ldap-status-msg">${esc(r.error.message)}</p>`;
  };
  $('#prov-buttons').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-kind]');
    if (!b) return;
    const kind = b.dataset.kind;
    const res = await act(b, st, `Reloading ${kind}…`, () => api('POST', `/api/admin/provisioning/${kind}/reload`), (r) => msgOf(r, r.status === 202 ? `${kind} reload accepted` : `${kind} reloaded`));
    if (res) refresh();
  });
  $('#ldap-reload').addEventListener('click', async (e) => {
    if (await act(e.target, $('#ldap-status-line'), 'Reloading LDAP…', () => api('POST', '/api/admin/ldap/reload'), 'LDAP config reloaded')) ldap();
  });
  refresh(); ldap();
}

// ---------- alerts ----------

async function pageAlerts() {
  view.innerHTML = `<h1>Alerts</h1>${statusLine()}
  <section class="panel"><div class="row" style="margin-top:0">
    <button type="button" id="pause-all">Pause all alerts</button>
    <button type="button" class="secondary" id="resume-all">Resume all alerts</button></div></section>
  <section class="panel" style="min-height:10rem"><div class="table-wrap"><table><thead><tr><th>ID</th><th>Name</th><th>State</th><th>Since</th><th>Dashboard</th><th><span class="sr">Actions</span></th></tr></thead>
    <tbody id="alerts-body">${skeletonRows(3, 6)}</tbody></table></div></section>`;
  const st = $('#page-status');
  const refresh = async () => {
    const r = await load(() => tryGet('/api/alerts'));
    if (!r) return;
    if (!r.ok) { $('#alerts-body').innerHTML = ''; setStatus(st, 'err', r.error.message); return; }
    $('#alerts-body').innerHTML = r.data.map((a) => `<tr data-testid="alert-row-${a.id}"><td>${a.id}</td><td>${esc(a.name)}</td><td><span class="badge ${a.state === 'alerting' ? 'err' : a.state === 'ok' ? 'ok' : ''}">${esc(a.state)}</span></td>
      <td>${fmtDate(a.newStateDate)}</td><td>${esc(a.dashboardUid)} / panel ${esc(a.panelId)}</td>
      <td><button type="button" class="btn-small secondary" data-alert="${a.id}" data-paused="${a.state === 'paused'}">${a.state === 'paused' ? 'Resume' : 'Pause'}</button></td></tr>`).join('') ||
      '<tr><td colspan="6" class="muted">No alerts.</td></tr>';
  };
  const all = (paused) => async (e) => {
    const btns = [$('#pause-all'), $('#resume-all')];
    btns.forEach((b) => (b.disabled = true));
    const res = await act(e.target, st, paused ? 'Pausing all alerts…' : 'Resuming all alerts…', () => api('POST', '/api/admin/pause-all-alerts', { paused }),
      (r) => `${msgOf(r, paused ? 'alerts paused' : 'alerts unpaused')} (${r.data.alertsAffected} affected)`);
    btns.forEach((b) => (b.disabled = false));
    if (res) refresh();
  };
  $('#pause-all').addEventListener('click', all(true));
  $('#resume-all').addEventListener('click', all(false));
  $('#alerts-body').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-alert]');
    if (!b) return;
    const paused = b.dataset.paused !== 'true';
    if (await act(b, st, 'Updating alert…', () => api('POST', `/api/alerts/${b.dataset.alert}/pause`, { paused }), paused ? 'Alert paused' : 'Alert resumed')) refresh();
  });
  refresh();
}

// ---------- roles & service accounts ----------

async function pageAccess() {
  view.innerHTML = `<h1>Roles &amp; service accounts</h1>${statusLine()}
  <div class="grid2">
    <section class="panel"><h2>Create role</h2>
      <form id="role-form">
        <label for="role-name">Name</label><input id="role-name" type="text" required placeholder="custom:reports:reader">
        <label for="role-uid">UID (optional)</label><input id="role-uid" type="text">
        <label for="role-permissions">Permissions (one "action scope" per line)</label><textarea id="role-permissions" placeholder="dashboards:read dashboards:*"></textarea>
        <label class="inline" for="role-global"><input type="checkbox" id="role-global" checked> Global role</label>
        <div class="row"><button type="submit" id="role-submit">Create role</button></div>
      </form>
      <h2 style="margin-top:1rem">Assign role to user</h2>
      <form id="assign-user-form" class="row">
        <div><label for="assign-user-id">User ID</label><input id="assign-user-id" type="number" min="1" required></div>
        <div><label for="assign-role-uid">Role</label><select id="assign-role-uid"></select></div>
        <button type="submit" id="assign-user-submit">Assign</button>
      </form>
    </section>
    <section class="panel"><h2>Service accounts</h2>
      <form id="sa-form" class="row" style="margin-top:0">
        <div><label for="sa-name">Name</label><input id="sa-name" type="text" required></div>
        <div><label for="sa-role">Role</label><select id="sa-role"><option>Viewer</option><option>Editor</option><option>Admin</option><option>None</option></select></div>
        <button type="submit" id="sa-submit">Create</button>
      </form>
      <div class="table-wrap" style="min-height:6rem;margin-top:.6rem"><table><thead><tr><th>ID</th><th>Name</th><th>Role</th><th>Tokens</th></tr></thead><tbody id="sa-body">${skeletonRows(2, 4)}</tbody></table></div>
      <h3>New token</h3>
      <form id="sa-token-form" class="row" style="margin-top:0">
        <div><label for="sa-token-account">Service account</label><select id="sa-token-account"></select></div>
        <div><label for="sa-token-name">Token name</label><input id="sa-token-name" type="text" required></div>
        <button type="submit" id="sa-token-submit">Create token</button>
      </form>
      <div id="sa-token-result"></div>
    </section>
  </div>
  <section class="panel" style="min-height:10rem"><h2>Roles</h2><div class="table-wrap" style="max-height:28rem;overflow:auto"><table><thead><tr><th>UID</th><th>Name</th><th>Group</th><th>Global</th><th>Permissions</th></tr></thead>
    <tbody id="roles-body">${skeletonRows(4, 5)}</tbody></table></div></section>`;
  const st = $('#page-status');
  const loadRoles = async () => {
    const r = await load(() => tryGet('/api/access-control/roles'));
    if (!r) return;
    if (!r.ok) { $('#roles-body').innerHTML = ''; setStatus(st, 'err', r.error.message); return; }
    $('#roles-body').innerHTML = r.data.map((x) => `<tr data-testid="role-row-${esc(x.uid)}"><td><code>${esc(x.uid)}</code></td><td>${esc(x.displayName || x.name)}<br><span class="muted">${esc(x.name)}</span></td><td>${esc(x.group || '')}</td><td>${yesNo(x.global)}</td>
      <td>${(x.permissions || []).map((p) => `${esc(p.action)} <span class="muted">${esc(p.scope || '')}</span>`).join('<br>')}</td></tr>`).join('');
    $('#assign-role-uid').innerHTML = r.data.map((x) => `<option value="${esc(x.uid)}">${esc(x.displayName || x.name)}</option>`).join('');
  };
  const loadSA = async () => {
    const r = await load(() => tryGet('/api/serviceaccounts/search?perpage=100&page=1'));
    if (!r) return;
    if (!r.ok) { $('#sa-body').innerHTML = ''; setStatus(st, 'err', r.error.message); return; }
    const list = r.data.serviceAccounts || [];
    $('#sa-body').innerHTML = list.map((a) => `<tr data-testid="sa-row-${esc(a.name)}"><td>${a.id}</td><td>${esc(a.name)}</td><td>${esc(a.role)}</td><td>${esc(a.tokens)}</td></tr>`).join('') || '<tr><td colspan="4" class="muted">No service accounts.</td></tr>';
    $('#sa-token-account').innerHTML = list.map((a) => `<option value="${a.id}">${esc(a.name)}</option>`).join('') || '<option value="">(create one first)</option>';
  };
  $('#role-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const permissions = $('#role-permissions').value.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => { const [action, ...rest] = l.split(/\s+/); return { action, scope: rest.join(' ') }; });
    const body = { name: $('#role-name').value.trim(), global: $('#role-global').checked, permissions };
    if ($('#role-uid').value.trim()) body.uid = $('#role-uid').value.trim();
    if (await act($('#role-submit'), st, 'Creating role…', () => api('POST', '/api/access-control/roles', body), (r) => `Role created (${r.data && r.data.uid})`)) { e.target.reset(); $('#role-global').checked = true; loadRoles(); }
  });
  $('#assign-user-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    await act($('#assign-user-submit'), st, 'Assigning role…', () => api('POST', `/api/access-control/users/${Number($('#assign-user-id').value)}/roles`, { roleUid: $('#assign-role-uid').value }), 'Role assigned');
  });
  $('#sa-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await act($('#sa-submit'), st, 'Creating service account…', () => api('POST', '/api/serviceaccounts', { name: $('#sa-name').value.trim(), role: $('#sa-role').value }), (r) => `Service account ${r.data.name} created (id ${r.data.id})`)) { $('#sa-name').value = ''; loadSA(); }
  });
  $('#sa-token-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = $('#sa-token-account').value;
    if (!id) { setStatus(st, 'err', 'Create a service account first.'); return; }
    const res = await act($('#sa-token-submit'), st, 'Creating token…', () => api('POST', `/api/serviceaccounts/${id}/tokens`, { name: $('#sa-token-name').value.trim() }), 'Token created — copy it now');
    if (res) {
      $('#sa-token-name').value = '';
      $('#sa-token-result').innerHTML = `<div class="warning"><p><strong>Copy this key now.</strong> It will not be shown again.</p>
        <div class="secret" id="sa-token-key" data-testid="sa-token-key">${esc(res.data.key)}</div>
        <div class="row"><button type="button" class="secondary" id="sa-token-copy">Copy to clipboard</button></div></div>`;
      $('#sa-token-copy').addEventListener('click', async () => {
        try { await navigator.clipboard.writeText(res.data.key); setStatus(st, 'ok', 'Key copied to the clipboard'); } catch (err) { setStatus(st, 'err', 'Could not copy: select the key and copy it by hand'); }
      });
      loadSA();
    }
  });
  loadRoles(); loadSA();
}

// ---------- start ----------

$('#nav-toggle').addEventListener('click', () => {
  const open = $('#nav').classList.toggle('open');
  $('#nav-toggle').setAttribute('aria-expanded', String(open));
});
$('#logout').addEventListener('click', logout);
window.addEventListener('hashchange', () => { route(); view.focus({ preventScroll: true }); });
boot();
