// One role: its permissions and who holds it (GET /api/access-control/roles/:uid/assignments:
// users, service accounts and teams by id); grant it to a user picked by search, or revoke it.

import { $, esc, yesNo, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, setStatus } from '../lib.js';
import { pickerHtml, attachPicker } from '../picker.js';
import { permissionList } from './access.js';

export default async function render({ params, page }) {
  const uid = params.uid;
  $('#view').innerHTML = `<p><a href="#/access">← Roles &amp; service accounts</a></p>${heading(`Role ${uid}`)}${statusLine()}
  <div class="grid2">
    <section class="panel" style="min-height:8rem"><h2>Permissions</h2><div id="role-info"><div class="skeleton">&nbsp;</div></div></section>
    <section class="panel"><h2>Grant to a user</h2>
      <form id="role-grant-form" class="row" style="margin-top:0">
        <div>${pickerHtml('role-user', 'User (search login, name or email)')}</div>
        <button type="submit" id="role-grant-submit">Grant role</button>
      </form></section>
  </div>
  <section class="panel" style="min-height:8rem"><h2>Who holds this role</h2>
    <div class="table-wrap"><table><thead><tr><th>Kind</th><th>Login / name</th><th>Email</th><th><span class="sr">Actions</span></th></tr></thead>
    <tbody id="holders-body">${skeletonRows(2, 4)}</tbody></table></div></section>`;
  const st = $('#page-status');
  const picker = attachPicker('role-user');
  const loadRole = async () => {
    const r = await load(() => tryGet(`/api/access-control/roles/${encodeURIComponent(uid)}`));
    if (!r) return false;
    if (!r.ok) { failed(r, st, page.permission, '#role-info'); return false; }
    const x = r.data;
    $('#page-title').textContent = `Role ${x.displayName || x.name}`;
    document.title = `Role ${x.displayName || x.name} · tollgate admin`;
    $('#role-info').innerHTML = `<dl class="kv"><dt>Name</dt><dd>${esc(x.name)}</dd><dt>UID</dt><dd><code>${esc(x.uid)}</code></dd>
      <dt>Group</dt><dd>${esc(x.group || '—')}</dd><dt>Global</dt><dd>${yesNo(x.global)}</dd></dl>
      <h3>Permissions (action · scope)</h3><div data-testid="role-permissions">${permissionList(x.permissions)}</div>`;
    return true;
  };
  const loadHolders = async () => {
    const r = await load(() => tryGet(`/api/access-control/roles/${encodeURIComponent(uid)}/assignments`));
    if (!r) return;
    if (!r.ok) { failed(r, st, 'users.roles:read', '#holders-body'); return; }
    const a = r.data;
    const [users, sas] = await Promise.all([
      Promise.all((a.users || []).map((id) => tryGet(`/api/users/${id}`).then((u) => ({ id, u })))),
      Promise.all((a.serviceAccounts || []).map((id) => tryGet(`/api/serviceaccounts/${id}`).then((u) => ({ id, u })))),
    ]);
    const rows = [
      ...users.map(({ id, u }) => `<tr data-testid="holder-user-${u.ok ? esc(u.data.login) : id}"><td>user</td>
        <td>${u.ok ? `<a href="#/users/${id}">${esc(u.data.login)}</a> <span class="muted">${esc(u.data.name || '')}</span>` : `#${id}`}</td><td>${u.ok ? esc(u.data.email) : ''}</td>
        <td><button type="button" class="btn-small secondary" data-revoke-user="${id}" aria-label="Revoke the role from ${u.ok ? esc(u.data.login) : `user ${id}`}">Revoke</button></td></tr>`),
      ...sas.map(({ id, u }) => `<tr data-testid="holder-sa-${id}"><td>service account</td><td>${u.ok ? esc(u.data.name) : `#${id}`}</td><td></td><td></td></tr>`),
      ...(a.teams || []).map((id) => `<tr><td>team</td><td>#${id}</td><td></td><td></td></tr>`),
    ];
    $('#holders-body').innerHTML = rows.join('') || '<tr><td colspan="4" class="muted" data-testid="no-holders">Nobody holds this role directly.</td></tr>';
  };
  $('#role-grant-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const user = picker.get();
    if (!user) { setStatus(st, 'err', 'Search for a user and pick one from the list first.'); return; }
    if (await act($('#role-grant-submit'), st, 'Granting role…', () => api('POST', `/api/access-control/users/${user.id}/roles`, { roleUid: uid }), `Role granted to ${user.login}`)) { picker.clear(); loadHolders(); }
  });
  $('#holders-body').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-revoke-user]');
    if (!b) return;
    if (await act(b, st, 'Revoking role…', () => api('DELETE', `/api/access-control/users/${b.dataset.revokeUser}/roles/${encodeURIComponent(uid)}`), 'Role revoked')) loadHolders();
  });
  if (await loadRole()) await loadHolders();
}
