// Users: search (login, name or email), page through, create.

import { $, esc, yesNo, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, msgOf } from '../lib.js';

const usersState = { page: 1, perPage: 20, query: '' };

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('Users')}${statusLine()}
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
    if (!r.ok) { failed(r, null, page.permission, '#users-body'); return; }
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
  await refresh();
}
