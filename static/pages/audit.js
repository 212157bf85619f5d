// Audit log: the recorded changes, sign-ins and denied requests, newest first
// (GET /api/admin/audit). The filters and the cursor live in the page URL
// (#/audit?action=users:*&before=40), so a link opens the log filtered (the user page links
// to its user's activity) and the browser's Back returns to the newer page. A failed
// sign-in's login is stored as an HMAC of the name tried: the page computes it
// (POST /api/admin/audit/hmac) to search for one. "Verify chain" checks the hash chain.

import { $, esc, fmtDate, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, setStatus } from '../lib.js';

// The filters the API takes, in the order of the form: [query key, label, input type, placeholder].
const FILTERS = [
  ['login', 'Actor login', 'text', 'exact login'],
  ['userId', 'Actor user id', 'number', ''],
  ['action', 'Action', 'text', 'users:create or users:*'],
  ['targetKind', 'Target kind', 'text', 'user, org, datasource…'],
  ['targetId', 'Target id', 'text', ''],
  ['result', 'Result', 'select', ''],
  ['status', 'HTTP status', 'number', ''],
  ['from', 'From', 'datetime-local', ''],
  ['to', 'To', 'datetime-local', ''],
  ['limit', 'Per page', 'number', '50'],
];
const RESULTS = [['', 'any'], ['success', 'success'], ['failure', 'failure']];
const COLS = 9;
const HMAC_PREFIX = 'hmac-sha256:';

// RFC 3339 or epoch milliseconds (as the API takes them) -> a datetime-local value in local time.
function localInput(v) {
  const d = new Date(/^\d+$/.test(v) ? Number(v) : v);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
const shortHmac = (login) => `HMAC ${login.slice(HMAC_PREFIX.length, HMAC_PREFIX.length + 12)}…`;

function filterControl([key, label, type, placeholder], value) {
  const id = `audit-${key}`;
  if (type === 'select') {
    return `<div><label for="${id}">${esc(label)}</label><select id="${id}" name="${key}">${RESULTS.map(([v, t]) => `<option value="${v}"${v === value ? ' selected' : ''}>${t}</option>`).join('')}</select></div>`;
  }
  const shown = type === 'datetime-local' ? localInput(value) : value;
  const extra = type === 'datetime-local' ? ' step="1"' : type === 'number' ? ` min="1"${key === 'limit' ? ' max="1000"' : ''}` : ' autocomplete="off"';
  return `<div><label for="${id}">${esc(label)}</label><input id="${id}" name="${key}" type="${type}"${extra} value="${esc(shown)}"${placeholder ? ` placeholder="${esc(placeholder)}"` : ''}></div>`;
}

// "action users:* · actor user id 2", for the line above the table.
function describe(current) {
  const parts = FILTERS.filter(([k]) => k !== 'limit' && current.get(k)).map(([k, label]) => {
    const v = current.get(k);
    if (k === 'login' && v.startsWith(HMAC_PREFIX)) return `${label.toLowerCase()}: a failed sign-in name (${shortHmac(v)})`;
    if (k === 'from' || k === 'to') return `${label.toLowerCase()} ${fmtDate(/^\d+$/.test(v) ? Number(v) : v)}`;
    return `${label.toLowerCase()} ${v}`;
  });
  return parts.length ? `Events where ${parts.join(' · ')}` : 'All events';
}

function actorCell(a) {
  const login = a.login || '';
  let who;
  if (!login) who = '<span class="muted">anonymous</span>';
  else if (login.startsWith(HMAC_PREFIX)) who = `<span title="${esc(login)}">failed sign-in (${esc(shortHmac(login))})</span>`;
  else if (a.userId != null) who = `<a href="#/users/${encodeURIComponent(a.userId)}">${esc(login)}</a>`;
  else who = esc(login);
  const via = [a.authMethod, a.serviceAccountId != null ? `service account #${a.serviceAccountId}` : '', a.tokenId != null ? `token #${a.tokenId}` : ''].filter(Boolean);
  return `<span data-testid="audit-actor">${who}</span>${via.length ? ` <span class="muted">${esc(via.join(' · '))}</span>` : ''}`;
}

function targetCell(t) {
  if (!t || (!t.kind && !t.id)) return '<span class="muted">—</span>';
  const id = t.kind === 'user' && /^\d+$/.test(t.id) ? `<a href="#/users/${t.id}">${esc(t.id)}</a>` : esc(t.id);
  return [esc(t.kind), id].filter(Boolean).join(' ');
}

const eventRow = (e) => `<tr data-testid="audit-row-${esc(e.seq)}" data-seq="${esc(e.seq)}" data-user-id="${esc(e.actor && e.actor.userId)}" data-action="${esc(e.action)}" data-status="${esc(e.status)}">
  <td class="num">${esc(e.seq)}</td>
  <td><time datetime="${esc(e.time)}">${esc(fmtDate(e.time))}</time></td>
  <td>${actorCell(e.actor || {})}</td>
  <td data-testid="audit-action"><code>${esc(e.action)}</code></td>
  <td class="wrap">${esc(e.method)} <code>${esc(e.route)}</code></td>
  <td class="wrap" data-testid="audit-target">${targetCell(e.target)}</td>
  <td><span class="badge ${e.status < 400 ? 'ok' : 'err'}">${esc(e.status)}</span></td>
  <td title="${esc(e.userAgent)}">${esc(e.client)}</td>
  <td class="wrap">${(e.fields || []).length ? esc(e.fields.join(', ')) : '<span class="muted">—</span>'}</td></tr>`;

const verdict = (d) => (d.ok
  ? `Chain intact: ${d.checked} ${d.checked === 1 ? 'event' : 'events'} checked.`
  : `Chain broken at event ${d.seq}: ${d.message} (${d.checked} checked before it).`);

export default async function render({ page, query }) {
  // The state this page shows: the filters and the cursor from the URL, nothing else.
  const current = new URLSearchParams();
  for (const k of [...FILTERS.map(([key]) => key), 'before']) { const v = (query.get(k) || '').trim(); if (v) current.set(k, v); }
  $('#view').innerHTML = `${heading('Audit log')}${statusLine()}
  <section class="panel" aria-labelledby="audit-filters-title"><h2 id="audit-filters-title">Filters</h2>
    <form id="audit-filters" role="search" class="row" style="margin-top:0">
      ${FILTERS.map((f) => filterControl(f, current.get(f[0]) || '')).join('')}
      <div class="row" style="flex-basis:100%"><button type="submit" id="audit-apply">Apply filters</button>
        <button type="button" class="secondary" id="audit-clear">Clear filters</button></div>
    </form>
    <form id="audit-hmac-form" class="row">
      <div><label for="audit-hmac-value">Failed sign-in name</label><input id="audit-hmac-value" type="text" autocomplete="off" required aria-describedby="audit-hmac-help"></div>
      <button type="submit" class="secondary" id="audit-hmac-submit">Find failed sign-ins</button>
    </form>
    <p class="muted" id="audit-hmac-help">A failed sign-in records an HMAC of the name tried, never the name: this computes it and filters the actor login by it.</p>
  </section>
  <section class="panel" aria-labelledby="audit-summary">
    <p id="audit-summary" data-testid="audit-summary" style="margin-top:0"><b>${esc(describe(current))}</b></p>
    <div class="table-wrap" style="min-height:12rem"><table id="audit-table">
      <caption class="sr">Audit events, newest first</caption>
      <thead><tr><th>#</th><th>Time</th><th>Actor</th><th>Action</th><th>Request</th><th>Target</th><th>Status</th><th>Client</th><th>Fields</th></tr></thead>
      <tbody id="audit-body">${skeletonRows(5, COLS)}</tbody></table></div>
    <div class="row" style="align-items:center">
      <button type="button" class="secondary" id="audit-newest"${current.get('before') ? '' : ' disabled'}>Newest</button>
      <span id="audit-pageinfo" class="muted" aria-live="polite">&nbsp;</span>
      <button type="button" class="secondary" id="audit-older" disabled>Older</button>
    </div>
  </section>
  <section class="panel" aria-labelledby="audit-verify-title"><h2 id="audit-verify-title">Chain integrity</h2>
    <p class="muted">Each event carries the hash of the one before it; verifying recomputes the chain and names the first event that was changed or removed.</p>
    <div class="row" style="margin-top:0"><button type="button" id="audit-verify">Verify chain</button></div>
    ${statusLine('audit-verify-status')}
  </section>`;
  const st = $('#page-status');
  let nextCursor = null;

  // Opens the page in another state; the same state again reloads the table in place.
  const go = (params) => {
    const s = params.toString();
    const hash = `#/audit${s ? `?${s}` : ''}`;
    if (location.hash === hash) refresh(); else location.hash = hash;
  };
  const formParams = () => {
    const out = new URLSearchParams();
    for (const [key, , type] of FILTERS) {
      const raw = $(`#audit-${key}`).value.trim();
      if (!raw) continue;
      const d = type === 'datetime-local' ? new Date(raw) : null;
      out.set(key, d && !Number.isNaN(d.getTime()) ? d.toISOString() : raw);
    }
    return out;
  };
  async function refresh() {
    const table = $('#audit-table');
    table.setAttribute('aria-busy', 'true');
    const r = await load(() => tryGet(`/api/admin/audit${current.toString() ? `?${current}` : ''}`));
    if (!r) return;
    table.setAttribute('aria-busy', 'false');
    if (!r.ok) { failed(r, st, page.permission, '#audit-body', '#audit-pageinfo'); return; }
    const events = r.data.events || [];
    nextCursor = r.data.nextCursor ?? null;
    $('#audit-body').innerHTML = events.map(eventRow).join('') ||
      `<tr><td colspan="${COLS}" class="muted" data-testid="audit-empty">No events match${current.get('before') ? ' before this point' : ''}.</td></tr>`;
    $('#audit-pageinfo').textContent = events.length
      ? `Events #${events[0].seq} to #${events[events.length - 1].seq}${nextCursor == null ? ' · the oldest match' : ''}`
      : 'No events';
    $('#audit-older').disabled = nextCursor == null;
  }

  $('#audit-filters').addEventListener('submit', (e) => { e.preventDefault(); go(formParams()); });
  $('#audit-clear').addEventListener('click', () => go(new URLSearchParams()));
  $('#audit-older').addEventListener('click', () => {
    if (nextCursor == null) return;
    const next = new URLSearchParams(current);
    next.set('before', String(nextCursor));
    go(next);
  });
  $('#audit-newest').addEventListener('click', () => { const next = new URLSearchParams(current); next.delete('before'); go(next); });
  $('#audit-hmac-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = $('#audit-hmac-value').value;
    const res = await act($('#audit-hmac-submit'), st, 'Computing the HMAC…', () => api('POST', '/api/admin/audit/hmac', { value }), 'HMAC computed');
    if (!res) return;
    // failed sign-ins carry no user id: a user id filter would hide them all
    $('#audit-login').value = res.data.hmac;
    $('#audit-userId').value = '';
    go(formParams());
  });
  $('#audit-verify').addEventListener('click', async (e) => {
    const vst = $('#audit-verify-status');
    const res = await act(e.target, vst, 'Verifying the chain…', () => api('GET', '/api/admin/audit/verify'), (r) => verdict(r.data));
    if (res && !res.data.ok) setStatus(vst, 'err', verdict(res.data));
  });
  await refresh();
}
