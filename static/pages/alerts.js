// Legacy alerts: list, pause / resume one, pause / resume all.

import { $, esc, fmtDate, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, msgOf } from '../lib.js';

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('Alerts')}${statusLine()}
  <section class="panel"><div class="row" style="margin-top:0">
    <button type="button" id="pause-all">Pause all alerts</button>
    <button type="button" class="secondary" id="resume-all">Resume all alerts</button></div></section>
  <section class="panel" style="min-height:10rem"><div class="table-wrap"><table><thead><tr><th>ID</th><th>Name</th><th>State</th><th>Since</th><th>Dashboard</th><th><span class="sr">Actions</span></th></tr></thead>
    <tbody id="alerts-body">${skeletonRows(3, 6)}</tbody></table></div></section>`;
  const st = $('#page-status');
  const refresh = async () => {
    const r = await load(() => tryGet('/api/alerts'));
    if (!r) return;
    if (!r.ok) { failed(r, st, page.permission, '#alerts-body'); return; }
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
  await refresh();
}
