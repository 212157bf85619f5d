// My account: who I am and my sessions. Every signed-in user may see it.

import { $, esc, fmtDate, yesNo, heading, statusLine, skeletonRows, load, tryGet, setStatus, session } from '../lib.js';

export default async function render() {
  const { me } = session;
  $('#view').innerHTML = `${heading('My account')}${statusLine()}
    <section class="panel"><dl class="kv" id="me-info">
      <dt>Login</dt><dd>${esc(me.login)}</dd><dt>Name</dt><dd>${esc(me.name || '—')}</dd><dt>Email</dt><dd>${esc(me.email)}</dd>
      <dt>Grafana admin</dt><dd>${yesNo(me.isGrafanaAdmin)}</dd></dl>
      ${me.isGrafanaAdmin ? '' : '<p class="muted">Administration pages need a Grafana Admin account or a role granting their permissions.</p>'}</section>
    <section class="panel"><h2>My sessions</h2><div class="table-wrap"><table><thead><tr><th>Created</th><th>Last seen</th><th>Client</th><th>Current</th></tr></thead>
      <tbody id="my-sessions">${skeletonRows(2, 4)}</tbody></table></div></section>`;
  const r = await load(() => tryGet('/api/user/auth-tokens'));
  if (!r) return;
  if (!r.ok) { setStatus($('#page-status'), 'err', r.error.message); $('#my-sessions').innerHTML = ''; return; }
  $('#my-sessions').innerHTML = r.data.map((t) => `<tr data-testid="my-session"><td>${fmtDate(t.createdAt)}</td><td>${fmtDate(t.seenAt)}</td><td>${esc(t.browser)} ${esc(t.browserVersion)} · ${esc(t.os)} · ${esc(t.clientIp)}</td><td>${yesNo(t.isActive)}</td></tr>`).join('') || '<tr><td colspan="4" class="muted">No sessions</td></tr>';
}
