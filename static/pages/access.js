// Roles & service accounts: every role with its permissions (each links to the role's page,
// which lists who holds it), create a role, assign a role to a user picked by search, create
// service accounts and their tokens.

import { $, esc, yesNo, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, setStatus } from '../lib.js';
import { pickerHtml, attachPicker } from '../picker.js';

// Runs async jobs with at most n at a time.
async function inPool(jobs, n) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, async () => { while (next < jobs.length) await jobs[next++](); }));
}

export const permissionList = (perms) => (perms || []).map((p) => `<span class="perm"><code>${esc(p.action)}</code>${p.scope ? ` <span class="muted">${esc(p.scope)}</span>` : ''}</span>`).join('<br>') || '<span class="muted">none</span>';

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('Roles & service accounts')}${statusLine()}
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
        <div>${pickerHtml('assign-user', 'User (search login, name or email)')}</div>
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
  <section class="panel" style="min-height:10rem"><h2>Roles</h2><div class="table-wrap" style="max-height:28rem;overflow:auto"><table><thead><tr><th>Name</th><th>UID</th><th>Group</th><th>Global</th><th>Permissions (action · scope)</th></tr></thead>
    <tbody id="roles-body">${skeletonRows(4, 5)}</tbody></table></div></section>`;
  const st = $('#page-status');
  const picker = attachPicker('assign-user');
  const loadRoles = async () => {
    const r = await load(() => tryGet('/api/access-control/roles'));
    if (!r) return;
    if (!r.ok) { failed(r, st, page.permission, '#roles-body'); return; }
    $('#roles-body').innerHTML = r.data.map((x) => `<tr data-testid="role-row-${esc(x.uid)}"><td><a href="#/roles/${encodeURIComponent(x.uid)}" data-testid="role-link-${esc(x.uid)}">${esc(x.displayName || x.name)}</a><br><span class="muted">${esc(x.name)}</span></td><td><code>${esc(x.uid)}</code></td><td>${esc(x.group || '')}</td><td>${yesNo(x.global)}</td>
      <td data-perms="${esc(x.uid)}"><span class="muted">Loading…</span></td></tr>`).join('');
    $('#assign-role-uid').innerHTML = r.data.map((x) => `<option value="${esc(x.uid)}">${esc(x.displayName || x.name)}</option>`).join('');
    // The list carries no permissions (as Grafana's); each role's own answer has them.
    await inPool(r.data.map((x) => async () => {
      const d = await load(() => tryGet(`/api/access-control/roles/${encodeURIComponent(x.uid)}`));
      const cell = d && $(`td[data-perms="${CSS.escape(x.uid)}"]`);
      if (cell) cell.innerHTML = d.ok ? permissionList(d.data.permissions) : `<span class="status err">${esc(d.error.message)}</span>`;
    }), 6);
  };
  const loadSA = async () => {
    const r = await load(() => tryGet('/api/serviceaccounts/search?perpage=100&page=1'));
    if (!r) return;
    if (!r.ok) { failed(r, st, 'serviceaccounts:read', '#sa-body'); return; }
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
    const user = picker.get();
    if (!user) { setStatus(st, 'err', 'Search for a user and pick one from the list first.'); return; }
    const roleUid = $('#assign-role-uid').value;
    await act($('#assign-user-submit'), st, 'Assigning role…', () => api('POST', `/api/access-control/users/${user.id}/roles`, { roleUid }), `Role ${roleUid} assigned to ${user.login}`);
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
  await loadRoles();
  if ($('#sa-body')) await loadSA(); // not when the page turned into "missing permission"
}
