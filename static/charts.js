// The UI's pictures, drawn as plain inline SVG. No chart library on purpose: a few bars and
// a time line need none, the UI stays dependency-free with no build step, and the CSP stays
// strict (scripts from 'self' only, nothing evaluated). Every mark carries its numbers as
// data attributes (data-value, data-limit, ...) so tests compare them with the API's answer,
// and every chart has a title and a text summary for screen readers.

import { esc } from './lib.js';

const W = 640; // viewBox width; the SVG scales to its container
let uid = 0;
const fmt = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

function frame(title, summary, height, body, testid) {
  const id = `chart-${++uid}`;
  return `<figure class="chart" data-testid="${esc(testid)}">
  <svg viewBox="0 0 ${W} ${height}" role="img" aria-labelledby="${id}-t ${id}-d" preserveAspectRatio="xMinYMin meet">
    <title id="${id}-t">${esc(title)}</title><desc id="${id}-d">${esc(summary)}</desc>${body}</svg>
  <figcaption class="muted">${esc(summary)}</figcaption></figure>`;
}

// Horizontal bars, one per row, each against its own limit (0: no limit) and a warning
// threshold (warnRatio of the limit). rows: [{ key, label, value, limit }].
export function limitBars({ title, rows, warnRatio, testid }) {
  const labelW = 150; const barW = W - labelW - 100; const rowH = 34;
  const height = rows.length * rowH + 24;
  // one scale for all rows, so a row without a limit is not drawn full
  const max = Math.max(1, ...rows.map((r) => Math.max(r.value, r.limit))) * 1.15;
  const body = rows.map((r, i) => {
    const x = (v) => labelW + (barW * v) / max;
    const y = 8 + i * rowH;
    const warnAt = r.limit ? r.limit * warnRatio : 0;
    const cls = r.limit && r.value > r.limit ? 'over' : r.limit && r.value >= warnAt ? 'warn' : 'ok';
    const marks = r.limit
      ? `<line class="warn-line" x1="${x(warnAt)}" x2="${x(warnAt)}" y1="${y - 3}" y2="${y + 21}" data-testid="${esc(testid)}-warn-${esc(r.key)}" data-value="${fmt(warnAt)}"><title>warning at ${fmt(warnAt)}</title></line>
         <line class="limit-line" x1="${x(r.limit)}" x2="${x(r.limit)}" y1="${y - 5}" y2="${y + 23}" data-testid="${esc(testid)}-limit-${esc(r.key)}" data-value="${r.limit}"><title>included: ${r.limit}</title></line>`
      : '';
    return `<text x="0" y="${y + 14}" class="lbl">${esc(r.label)}</text>
      <rect class="track" x="${labelW}" y="${y}" width="${barW}" height="18"></rect>
      <rect class="bar ${cls}" x="${labelW}" y="${y}" width="${Math.max(x(r.value) - labelW, r.value ? 2 : 0)}" height="18"
        data-testid="${esc(testid)}-bar-${esc(r.key)}" data-key="${esc(r.key)}" data-value="${r.value}" data-limit="${r.limit}"><title>${esc(r.label)}: ${r.value}</title></rect>
      ${marks}
      <text x="${labelW + barW + 6}" y="${y + 14}" class="val">${r.value}${r.limit ? ` / ${r.limit}` : ' (no limit)'}</text>`;
  }).join('');
  const legend = `<g class="legend" transform="translate(${labelW},${height - 6})"><line class="limit-line" x1="0" x2="0" y1="-9" y2="1"></line><text x="6" y="0">included</text>
    <line class="warn-line" x1="80" x2="80" y1="-9" y2="1"></line><text x="86" y="0">warning (${Math.round(warnRatio * 100)}%)</text></g>`;
  const summary = rows.map((r) => `${r.label} ${r.value}${r.limit ? ` of ${r.limit} included` : ' (no limit)'}`).join('; ');
  return frame(title, summary, height, body + legend, testid);
}

// A time line from today to the furthest expiry; each item is a row with its expiry, and the
// warning window (warnDays before it) shaded. items: [{ key, label, at (ISO), warnDays }].
export function expiryTimeline({ title, items, now = Date.now(), testid }) {
  const DAY = 86_400_000;
  const labelW = 130; const span = W - labelW - 20; const rowH = 30;
  const times = items.map((i) => Date.parse(i.at));
  const start = Math.min(now, ...times.map((t, k) => t - (items[k].warnDays || 0) * DAY)) - 2 * DAY;
  const end = Math.max(now, ...times) + 5 * DAY;
  const x = (t) => labelW + (span * (t - start)) / (end - start);
  const height = items.length * rowH + 40;
  const rows = items.map((it, i) => {
    const t = times[i]; const y = 10 + i * rowH;
    const daysLeft = Math.floor((t - now) / DAY);
    const w0 = t - (it.warnDays || 0) * DAY;
    return `<text x="0" y="${y + 14}" class="lbl">${esc(it.label)}</text>
      <rect class="track" x="${labelW}" y="${y}" width="${span}" height="18"></rect>
      <rect class="warn-zone" x="${x(w0)}" y="${y}" width="${Math.max(x(t) - x(w0), 0)}" height="18" data-testid="${esc(testid)}-warn-${esc(it.key)}" data-warn-days="${it.warnDays || 0}"><title>warning window: ${it.warnDays || 0} days</title></rect>
      <rect class="bar ${t < now ? 'over' : now >= w0 ? 'warn' : 'ok'}" x="${Math.min(x(now), x(t))}" y="${y + 5}" width="${Math.abs(x(t) - x(now))}" height="8"></rect>
      <circle class="expiry" cx="${x(t)}" cy="${y + 9}" r="5" data-testid="${esc(testid)}-expiry-${esc(it.key)}" data-at="${esc(it.at)}" data-days-left="${daysLeft}"><title>${esc(it.label)}: ${esc(new Date(t).toLocaleDateString())}</title></circle>`;
  }).join('');
  const axisY = height - 22;
  const today = `<line class="today" x1="${x(now)}" x2="${x(now)}" y1="4" y2="${axisY}" data-testid="${esc(testid)}-today" data-at="${new Date(now).toISOString()}"></line>
    <text class="axis" x="${x(now)}" y="${axisY + 12}" text-anchor="middle">today</text>
    <text class="axis" x="${labelW + span}" y="${axisY + 12}" text-anchor="end">${esc(new Date(end).toLocaleDateString())}</text>`;
  const summary = items.map((it, i) => `${it.label} ${new Date(times[i]).toLocaleDateString()} (${Math.floor((times[i] - now) / DAY)} days left, warning ${it.warnDays || 0} days before)`).join('; ');
  return frame(title, summary, height, rows + today, testid);
}

// Vertical grouped columns over time. series: [{ key, label }]; points: [{ start, ...values }].
// label(point) gives the axis text; every `tickEvery`-th point is labelled.
export function columns({ title, series, points, label, tickEvery = 1, testid }) {
  const left = 30; const top = 10; const plotH = 150; const plotW = W - left - 6;
  const max = Math.max(1, ...points.flatMap((p) => series.map((s) => p[s.key] || 0)));
  const slot = plotW / Math.max(points.length, 1);
  const bw = Math.max((slot - 2) / series.length, 1);
  const yOf = (v) => top + plotH - (plotH * v) / max;
  const bars = points.map((p, i) => series.map((s, k) => {
    const v = p[s.key] || 0;
    return `<rect class="col s${k}" x="${left + i * slot + 1 + k * bw}" y="${yOf(v)}" width="${bw}" height="${top + plotH - yOf(v)}"
      data-series="${esc(s.key)}" data-start="${esc(p.start)}" data-value="${v}"><title>${esc(label(p))} · ${esc(s.label)}: ${v}</title></rect>`;
  }).join('') + (i % tickEvery === 0 ? `<text class="axis" x="${left + i * slot + slot / 2}" y="${top + plotH + 12}" text-anchor="middle">${esc(label(p))}</text>` : '')).join('');
  const axis = `<line class="axis-line" x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}"></line>
    <text class="axis" x="${left - 4}" y="${top + 8}" text-anchor="end">${max}</text><text class="axis" x="${left - 4}" y="${top + plotH}" text-anchor="end">0</text>`;
  const legend = series.map((s, k) => `<g transform="translate(${left + k * 130},${top + plotH + 30})"><rect class="col s${k}" width="10" height="10" y="-9"></rect><text x="14" y="0">${esc(s.label)}</text></g>`).join('');
  // Counts add up over the period; a number of users does not (the same user every hour), so
  // a series with peak: true reports its highest value instead.
  const summary = series.map((s) => { const vs = points.map((p) => p[s.key] || 0); return s.peak ? `${s.label} peak ${Math.max(0, ...vs)}` : `${s.label} ${vs.reduce((a, v) => a + v, 0)}`; }).join(', ');
  return frame(title, `${summary}.`, top + plotH + 40, axis + bars + legend, testid);
}

// Data keys grouped by state: one row per key (its references as the bar), rows of a state
// together under the state's name and total. keys: GET /api/admin/encryption/status .dataKeys.
export function keysByState(keys, testid = 'datakeys') {
  if (!keys.length) return '<p class="muted">No data keys.</p>';
  const order = ['active', 'retired'];
  const states = [...new Set(keys.map((k) => k.state))].sort((a, b) => ((order.indexOf(a) + 1 || 9) - (order.indexOf(b) + 1 || 9)) || a.localeCompare(b));
  const max = Math.max(1, ...keys.map((k) => k.references || 0));
  const labelW = 120; const barW = W - labelW - 80; const rowH = 24;
  let y = 4; let body = '';
  for (const s of states) {
    const mine = keys.filter((k) => k.state === s);
    const total = mine.reduce((a, k) => a + (k.references || 0), 0);
    body += `<text x="0" y="${y + 14}" class="grp" data-testid="${testid}-state-${esc(s)}" data-state="${esc(s)}" data-keys="${mine.length}" data-references="${total}">${esc(s)}: ${mine.length} key(s), ${total} reference(s)</text>`;
    y += 22;
    for (const k of mine) {
      const v = k.references || 0;
      body += `<text x="12" y="${y + 13}" class="lbl">key ${esc(k.id)}</text>
        <rect class="track" x="${labelW}" y="${y}" width="${barW}" height="16"></rect>
        <rect class="bar st-${esc(s)}" x="${labelW}" y="${y}" width="${Math.max((barW * v) / max, v ? 2 : 0)}" height="16"
          data-testid="${testid}-bar-${esc(k.id)}" data-state="${esc(s)}" data-value="${v}"><title>key ${esc(k.id)} (${esc(s)}): ${v} reference(s)</title></rect>
        <text x="${labelW + barW + 6}" y="${y + 13}" class="val">${v}</text>`;
      y += rowH;
    }
  }
  const summary = states.map((s) => { const m = keys.filter((k) => k.state === s); return `${s}: ${m.length} key(s), ${m.reduce((a, k) => a + (k.references || 0), 0)} reference(s)`; }).join('; ');
  return frame('Data keys by state and their references', summary, y + 4, body, testid);
}
