// Provisioning: reload each kind, the last run of each; LDAP reload and status.

import { $, esc, fmtDate, yesNo, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, msgOf } from '../lib.js';

const PROV_KINDS = [['dashboards', 'Dashboards'], ['datasources', 'Datasources'], ['plugins', 'Plugins'], ['notifications', 'Notifications'], ['access-control', 'Access control']];

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('Provisioning')}${statusLine()}
  <section class="panel"><h2>Reload</h2><div class="row" style="margin-top:0" id="prov-buttons">
    ${PROV_KINDS.map(([k, t]) => `<button type="button" id="reload-${k}" data-kind="${k}">Reload ${esc(t.toLowerCase())}</button>`).join('')}</div></section>
  <section class="panel" style="min-height:12rem"><h2>Last runs</h2><div class="table-wrap"><table><thead><tr><th>Kind</th><th>At</th><th>Result</th><th>Applied</th><th>Removed</th><th>Files</th></tr></thead>
    <tbody id="prov-body">${skeletonRows(5, 6)}</tbody></table></div></section>
  <section class="panel" id="ldap-panel"><h2>LDAP</h2>
    <div class="row" style="margin-top:0"><button type="button" id="ldap-reload">Reload LDAP config</button></div>
    ${statusLine('ldap-status-line')}
    <div id="ldap-status" style="min-height:2rem"><div class="skeleton">&nbsp;</div></div></section>`;
  const st = $('#page-status');
  const refresh = async () => {
    const r = await load(() => tryGet('/api/admin/provisioning/status'));
    if (!r) return;
    if (!r.ok) { failed(r, st, page.permission, '#prov-body'); return; }
    $('#prov-body').innerHTML = Object.entries(r.data).map(([k, v]) => `<tr data-testid="prov-${esc(k)}"><td>${esc(k)}</td><td>${fmtDate(v.at)}</td>
      <td>${v.ok ? '<span class="badge ok">ok</span>' : `<span class="badge err">failed</span> ${esc(v.error)}`}</td><td class="num">${esc(v.applied)}</td><td class="num">${esc(v.removed)}</td>
      <td>${(v.files || []).length ? `<ul>${v.files.map((f) => `<li>${f.ok ? '✓' : '✗'} ${esc(f.file)}${f.message ? ' — ' + esc(f.message) : ''}</li>`).join('')}</ul>` : '<span class="muted">none</span>'}</td></tr>`).join('');
  };
  // LDAP's server status only when LDAP is on ([auth.ldap] enabled); otherwise the server
  // would answer 400 "LDAP is not enabled" to a question the page need not ask.
  const ldapEnabled = async () => {
    const r = await load(() => tryGet('/api/admin/settings'));
    return r && r.ok && String((r.data['auth.ldap'] || {}).enabled).toLowerCase() === 'true';
  };
  const ldap = async () => {
    const on = await ldapEnabled();
    if (!$('#ldap-status')) return;
    if (!on) {
      $('#ldap-status').innerHTML = '<p class="muted" data-testid="ldap-status-msg">LDAP is not enabled (<code>[auth.ldap] enabled</code> is false).</p>';
      return;
    }
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
  await refresh();
  if ($('#ldap-status')) await ldap(); // not when the page turned into "missing permission"
}
