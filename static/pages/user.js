// One user: profile, password, Grafana Admin flag, roles, sessions, and a link to the audit
// log of what the user did.

import { $, esc, fmtDate, yesNo, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, setStatus } from '../lib.js';

export default async function render({ params, page }) {
  const id = Number(params.id);
  $('#view').innerHTML = `<p><a href="#/users">← Users</a> · <a href="#/audit?userId=${id}" data-testid="user-activity-link">Activity of this user</a></p>${heading(`User #${id}`)}${statusLine()}
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
    if (!r.ok) { failed(r, st, page.permission); return; }
    user = r.data;
    $('#page-title').textContent = `User ${user.login}`;
    document.title = `User ${user.login} · tollgate admin`;
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
    $('#user-roles').innerHTML = mine.ok ? (mine.data.length ? mine.data.map((r) => `<a class="badge" href="#/roles/${encodeURIComponent(r.uid)}">${esc(r.displayName || r.name)}</a>`).join(' ') : 'No roles assigned directly.') : `<span class="status err">${esc(mine.error.message)}</span>`;
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
  if (!$('[data-testid="access-denied"]')) await Promise.all([loadSessions(), loadRoles()]);
}
