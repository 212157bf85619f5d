// License: status, seat usage and expiry pictures, upload / renew / remove, token claims.

import { $, esc, fmtDate, yesNo, heading, statusLine, load, tryGet, failed, act, api, setStatus, msgOf } from '../lib.js';
import { licenseWarnings, seatChart, expiryChart, hasToken } from '../licensing.js';

const seat = (used, included) => `${esc(used)}/${included ? esc(included) : 'no limit'}`;

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('License')}${statusLine()}
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
  <div class="grid2">
    <section class="panel" style="min-height:8rem"><h2>Seats</h2><div id="lic-seats"><div class="skeleton">&nbsp;</div></div></section>
    <section class="panel" style="min-height:8rem"><h2>Expiry</h2><div id="lic-expiry"><div class="skeleton">&nbsp;</div></div></section>
  </div>
  <section class="panel" style="min-height:5rem"><h2>Token claims</h2><div id="lic-claims"><div class="skeleton">&nbsp;</div></div></section>`;
  const st = $('#page-status');
  const refresh = async () => {
    const s = await load(() => tryGet('/api/licensing/status'));
    if (!s) return;
    if (!s.ok) { failed(s, st, page.permission, '#lic-status'); return; }
    // The token's claims only when there is a token (no 404 to ask for).
    const t = hasToken(s.data) ? await load(() => tryGet('/api/licensing/token')) : { ok: false, none: true };
    if (!t) return;
    {
      const d = s.data;
      $('#lic-warnings').innerHTML = licenseWarnings(d);
      const exp = (e) => (e ? `${fmtDate(e.at)} · ${esc(e.daysLeft)} days left${e.warning ? ' <span class="badge warn">warning</span>' : ''}` : '—');
      $('#lic-status').innerHTML = `<dl class="kv" data-testid="license-status">
        <dt>State</dt><dd><span class="badge ${d.state === 'valid' ? 'ok' : 'warn'}" data-testid="license-state">${esc(d.state)}</span></dd>
        <dt>Reason</dt><dd>${esc(d.reason || '—')}</dd><dt>Source</dt><dd>${esc(d.source)}</dd>
        <dt>License ID</dt><dd>${esc(d.licenseId || '—')}</dd><dt>Company</dt><dd>${esc(d.company || '—')}</dd>
        <dt>Instance</dt><dd>${esc(d.instance || '—')}</dd>
        <dt>License expiry</dt><dd>${exp(d.licenseExpiry)}</dd><dt>Token expiry</dt><dd>${exp(d.tokenExpiry)}</dd>
        <dt>Seats</dt><dd>${d.seats ? `users ${seat(d.seats.users, d.seats.includedUsers)}, admins+editors ${seat(d.seats.adminsAndEditors, d.seats.includedAdmins)}, viewers ${seat(d.seats.viewers, d.seats.includedViewers)}${d.seats.overLimit ? ' <span class="badge err">over limit</span>' : ''}` : '—'}</dd>
        <dt>Auto refresh</dt><dd>${yesNo(d.autoRefresh)}${d.nextRenewalAt ? ' · next ' + fmtDate(d.nextRenewalAt) : ''}</dd></dl>`;
      const lr = d.lastRenewal;
      $('#lic-renewal').innerHTML = lr ? `${fmtDate(lr.at)} (${esc(lr.trigger)}) — ${lr.ok ? '<span class="badge ok">ok</span>' : `<span class="badge err">failed</span> ${esc(lr.error)}`}` : 'No renewal attempted yet.';
      if (!$('#license-instance').value) $('#license-instance').value = d.instance || '';
      $('#lic-seats').innerHTML = seatChart(d.seats);
      $('#lic-expiry').innerHTML = expiryChart(d, t.ok ? t.data : null);
    }
    if (t.ok) $('#lic-claims').innerHTML = `<dl class="kv">${Object.entries(t.data).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === 'object' ? JSON.stringify(v) : (['exp', 'iat', 'nbf', 'lexp'].includes(k) && typeof v === 'number' ? `${v} (${new Date(v * 1000).toLocaleString()})` : v))}</dd>`).join('')}</dl>`;
    else $('#lic-claims').innerHTML = `<p class="muted" data-testid="no-token">${t.none ? 'No license token.' : esc(t.error.message)}</p>`;
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
  await refresh();
}
