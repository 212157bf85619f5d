// Shared helpers of the admin UI: DOM shortcuts, escaping, the JSON API client, status
// lines, and the "load while this page is still shown" guard. No page logic here.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
export const view = $('#view');

export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
export const fmtDate = (s) => (s ? new Date(s).toLocaleString() : '—');
export const yesNo = (b, okWord = 'yes', noWord = 'no') => (b ? `<span class="badge ok">${okWord}</span>` : `<span class="badge">${noWord}</span>`);

// The signed-in user (GET /api/user) and the render generation (bumped on every navigation,
// so an answer that arrives after the user moved on is dropped).
export const session = { me: null, seq: 0, onUnauthorized: null };

export class ApiError extends Error {
  constructor(msg, status, data) { super(msg); this.status = status; this.data = data; }
}

export async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(`Network error: ${e.message}`, 0, null);
  }
  const text = await r.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* plain text body */ }
  if (!r.ok) {
    const msg = (data && typeof data === 'object' && data.message) || (typeof data === 'string' && data) || `${r.status} ${r.statusText}`;
    if (r.status === 401 && path !== '/login' && session.me && session.onUnauthorized) session.onUnauthorized(msg);
    throw new ApiError(msg, r.status, data);
  }
  return { status: r.status, data };
}

export const msgOf = (res, fallback) =>
  (res && res.data && typeof res.data === 'object' && res.data.message) || (res && typeof res.data === 'string' && res.data) || fallback;

export function setStatus(el, kind, msg) {
  if (!el) return;
  el.className = 'status ' + kind;
  el.textContent = msg;
}

// Runs an action: disables the button, shows progress, then success or the server's message.
export async function act(btn, statusEl, busyMsg, fn, okMsg) {
  if (btn) btn.disabled = true;
  setStatus(statusEl, 'busy', busyMsg || 'Working…');
  try {
    const res = await fn();
    const m = typeof okMsg === 'function' ? okMsg(res) : msgOf(res, okMsg || 'Done');
    setStatus(statusEl, 'ok', m);
    return res;
  } catch (e) {
    setStatus(statusEl, 'err', e.message);
    return null;
  } finally {
    if (btn) btn.disabled = false;
  }
}

export const statusLine = (id = 'page-status') => `<div class="status" id="${id}" data-testid="${id}" role="status" aria-live="polite"></div>`;
export const skeletonRows = (n = 3, cols = 4) => Array.from({ length: n }, () => `<tr>${'<td><div class="skeleton">&nbsp;</div></td>'.repeat(cols)}</tr>`).join('');
// Every page starts with its heading; the router moves the focus there on navigation.
export const heading = (text, id = 'page-title') => `<h1 id="${id}" tabindex="-1">${esc(text)}</h1>`;

// Loads data for the current page; returns null if the user navigated away meanwhile.
export async function load(fn) {
  const seq = session.seq;
  const out = await fn();
  return seq === session.seq ? out : null;
}
export const tryGet = async (path) => { try { return { ok: true, data: (await api('GET', path)).data }; } catch (e) { return { ok: false, error: e }; } };

// A 403 names the missing permission ("... Permissions needed: users:read"); the page then
// says so instead of showing an empty table. Returns true when it took over the view.
export function showDenied(error, fallbackPermission) {
  if (!error || error.status !== 403) return false;
  const m = /Permissions needed:\s*(\S+)/.exec(error.message || '');
  const perm = (m && m[1]) || fallbackPermission || 'an access-control permission';
  const h1 = $('#page-title');
  const title = h1 ? h1.textContent : 'Access denied';
  view.innerHTML = `${heading(title)}<section class="panel warning" role="alert" data-testid="access-denied">
    <p>You need the permission <code data-testid="missing-permission">${esc(perm)}</code> (Grafana Admin or a role granting it) to use this page.</p>
    <p class="muted">Ask a Grafana Admin to grant it. <a href="#/overview">Back to my account</a>.</p></section>`;
  return true;
}

// Several sections each report their own failure; the first 403 turns the page into the
// "missing permission" message.
// `clear` names sections to empty (their skeletons) when the page stays.
export function failed(r, el, fallbackPermission, ...clear) {
  if ($('[data-testid="access-denied"]') || showDenied(r.error, fallbackPermission)) return;
  clear.forEach((sel) => { const c = $(sel); if (c) c.innerHTML = ''; });
  setStatus(el || $('#page-status'), 'err', r.error.message);
}
