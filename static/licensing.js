// License pictures and warnings shared by the overview and the license page.

import { esc, fmtDate } from './lib.js';
import { limitBars, expiryTimeline } from './charts.js';

// The server flags seats only once they are over the license (seats.overLimit); the UI warns
// earlier, at this share of what the license includes, and draws that line on the seat bars.
export const SEAT_WARN_RATIO = 0.9;

export function licenseWarnings(st) {
  const w = [];
  if (st.licenseExpiry && st.licenseExpiry.warning) w.push(`The license expires in ${st.licenseExpiry.daysLeft} day(s) (${fmtDate(st.licenseExpiry.at)}).`);
  if (st.tokenExpiry && st.tokenExpiry.warning) w.push(`The license token expires in ${st.tokenExpiry.daysLeft} day(s) (${fmtDate(st.tokenExpiry.at)}); renew it.`);
  if (st.seats && st.seats.overLimit) w.push('More users than the license includes.');
  if (st.state && !['valid', 'missing'].includes(st.state)) w.push(`License state: ${st.state}${st.reason ? ' — ' + st.reason : ''}`);
  // In-flow block (never an overlay) so upload/renew controls stay reachable.
  return w.length ? `<div class="warning" role="alert" data-testid="license-warning">${w.map((x) => `<div>${esc(x)}</div>`).join('')}</div>` : '';
}

// Seat usage (GET /api/licensing/status .seats) against what the license includes.
export function seatChart(seats) {
  return limitBars({
    title: 'Seats used against the license',
    testid: 'seats',
    warnRatio: SEAT_WARN_RATIO,
    rows: [
      { key: 'users', label: 'Users', value: seats.users, limit: seats.includedUsers },
      { key: 'adminsAndEditors', label: 'Admins & editors', value: seats.adminsAndEditors, limit: seats.includedAdmins },
      { key: 'viewers', label: 'Viewers', value: seats.viewers, limit: seats.includedViewers },
    ],
  });
}

// License and token expiry; the warning windows come from the token's claims
// (lic_exp_warn_days, tok_exp_warn_days) when the token could be read.
export function expiryChart(st, claims) {
  const items = [];
  if (st.licenseExpiry) items.push({ key: 'license', label: 'License', at: st.licenseExpiry.at, warnDays: claims ? claims.lic_exp_warn_days : 0 });
  if (st.tokenExpiry) items.push({ key: 'token', label: 'Token', at: st.tokenExpiry.at, warnDays: claims ? claims.tok_exp_warn_days : 0 });
  if (!items.length) return '<p class="muted" data-testid="no-expiry">No license token, so nothing expires.</p>';
  return expiryTimeline({ title: 'License and token expiry', testid: 'expiry', items });
}

// The license token exists (and decodes) when the status reports its expiry; only then is
// GET /api/licensing/token worth asking (it answers 404 without a token).
export const hasToken = (st) => Boolean(st && (st.licenseExpiry || st.tokenExpiry));
