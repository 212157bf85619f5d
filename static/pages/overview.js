// Overview (Grafana Admins): usage counters, seat usage against the license, and sign-in
// activity over the last 24 hours and 30 days.

import { $, esc, fmtDate, heading, statusLine, load, tryGet, failed } from '../lib.js';
import { columns } from '../charts.js';
import { licenseWarnings, seatChart } from '../licensing.js';

const STATS = [['users', 'Users'], ['admins', 'Admins'], ['editors', 'Editors'], ['viewers', 'Viewers'], ['activeUsers', 'Active users'], ['activeSessions', 'Active sessions'], ['datasources', 'Data sources'], ['dashboards', 'Dashboards'], ['alerts', 'Alerts'], ['orgs', 'Orgs']];
const SERIES = [{ key: 'signIns', label: 'Sign-ins' }, { key: 'failedSignIns', label: 'Failed sign-ins' }, { key: 'activeUsers', label: 'Active users', peak: true }];
const hour = (p) => new Date(p.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const day = (p) => new Date(p.start).toLocaleDateString([], { month: 'short', day: 'numeric' });

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('Overview')}${statusLine()}
    <section class="panel"><h2>Usage</h2><div class="cards" id="stats">${'<div class="card skeleton">&nbsp;<br>&nbsp;</div>'.repeat(8)}</div></section>
    <div class="grid2">
      <section class="panel" style="min-height:8rem"><h2>License</h2><div id="lic-summary"><div class="skeleton">&nbsp;</div></div></section>
      <section class="panel" style="min-height:8rem"><h2>Seats</h2><div id="seat-chart"><div class="skeleton">&nbsp;</div></div></section>
    </div>
    <section class="panel" style="min-height:14rem"><h2>Sign-ins and active users</h2>
      <div class="grid2"><div id="activity-hourly"><div class="skeleton">&nbsp;</div></div><div id="activity-daily"><div class="skeleton">&nbsp;</div></div></div></section>`;
  const out = await load(() => Promise.all([tryGet('/api/admin/stats'), tryGet('/api/licensing/status'), tryGet('/api/admin/stats/activity')]));
  if (!out) return;
  const [stats, lic, act] = out;
  if (!stats.ok) return failed(stats, null, page.permission);
  const s = stats.data;
  $('#stats').innerHTML = STATS.filter(([k]) => k in s).map(([k, t]) => `<div class="card" data-testid="stat-${k}"><b>${esc(s[k])}</b><span>${esc(t)}</span></div>`).join('');
  if (lic.ok) {
    const st = lic.data;
    $('#lic-summary').innerHTML = `${licenseWarnings(st)}<dl class="kv">
      <dt>State</dt><dd><span class="badge ${st.state === 'valid' ? 'ok' : 'warn'}">${esc(st.state)}</span> ${esc(st.reason || '')}</dd>
      <dt>Source</dt><dd>${esc(st.source)}</dd>
      <dt>License expiry</dt><dd>${st.licenseExpiry ? `${fmtDate(st.licenseExpiry.at)} (${esc(st.licenseExpiry.daysLeft)} days)` : '—'}</dd>
    </dl><p><a href="#/license">Manage the license</a></p>`;
    $('#seat-chart').innerHTML = seatChart(st.seats);
  } else {
    $('#lic-summary').innerHTML = `<div class="status err">${esc(lic.error.message)}</div>`;
    $('#seat-chart').innerHTML = '';
  }
  if (act.ok) {
    $('#activity-hourly').innerHTML = columns({ title: 'Last 24 hours', testid: 'activity-hourly', series: SERIES, points: act.data.hourly, label: hour, tickEvery: 6 });
    $('#activity-daily').innerHTML = columns({ title: 'Last 30 days', testid: 'activity-daily', series: SERIES, points: act.data.daily, label: day, tickEvery: 7 });
  } else {
    $('#activity-hourly').innerHTML = `<div class="status err">${esc(act.error.message)}</div>`;
    $('#activity-daily').innerHTML = '';
  }
}
