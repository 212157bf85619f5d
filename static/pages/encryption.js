// Encryption: data keys (a picture by state with reference counts, and the table), the
// re-encryption job and its progress, rotate / re-encrypt actions.

import { $, $$, esc, fmtDate, heading, statusLine, skeletonRows, tryGet, failed, act, msgOf, api, session } from '../lib.js';
import { keysByState } from '../charts.js';

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('Encryption')}${statusLine()}
  <section class="panel"><h2>Actions</h2>
    <div class="row" style="margin-top:0">
      <button type="button" id="enc-rotate">Rotate data keys</button>
      <button type="button" id="enc-reencrypt-secrets">Re-encrypt secrets</button>
      <button type="button" id="enc-reencrypt-datakeys">Re-encrypt data keys</button>
    </div></section>
  <section class="panel" style="min-height:7rem"><h2>Re-encryption job</h2><div id="enc-job"><div class="skeleton">&nbsp;</div></div></section>
  <section class="panel"><h2>Data keys</h2><p id="enc-meta" class="muted">&nbsp;</p>
    <div id="enc-chart" style="min-height:4rem"></div>
    <div class="table-wrap"><table><thead><tr><th>ID</th><th>State</th><th>Created</th><th>Retired</th><th>KEK</th><th>References</th><th>Reserved</th></tr></thead>
    <tbody id="enc-keys">${skeletonRows(2, 7)}</tbody></table></div></section>`;
  const st = $('#page-status');
  const seq = session.seq;
  const refresh = async () => {
    const r = await tryGet('/api/admin/encryption/status');
    if (seq !== session.seq) return null;
    if (!r.ok) { failed(r, st, page.permission); return null; }
    const d = r.data; const j = d.reencryption || {};
    $('#enc-meta').textContent = `Active data key: ${d.activeDataKeyId ?? '—'} · key encryption key: ${d.kekId || '—'}`;
    $('#enc-chart').innerHTML = keysByState(d.dataKeys || []);
    $('#enc-keys').innerHTML = (d.dataKeys || []).map((k) => `<tr data-testid="datakey-${k.id}"><td>${k.id}</td><td><span class="badge ${k.state === 'active' ? 'ok' : ''}">${esc(k.state)}</span></td>
      <td>${fmtDate(k.created)}</td><td>${k.retired ? fmtDate(k.retired) : '—'}</td><td>${esc(k.kekId)}</td><td class="num">${esc(k.references)}</td><td class="num">${esc(k.encryptionsReserved)}</td></tr>`).join('') || '<tr><td colspan="7" class="muted">No data keys</td></tr>';
    const pct = j.total ? Math.round((100 * j.processed) / j.total) : (j.running ? 0 : 100);
    $('#enc-job').innerHTML = `<p>${j.running ? '<span class="badge warn">running</span>' : '<span class="badge">idle</span>'}${j.resumed ? ' (resumed)' : ''}
      ${j.startedAt ? ' · started ' + fmtDate(j.startedAt) : ''}${j.finishedAt ? ' · finished ' + fmtDate(j.finishedAt) : ''}</p>
      <label for="enc-progress">Progress: ${esc(j.processed || 0)} of ${esc(j.total || 0)} (updated ${esc(j.updated || 0)}, skipped ${esc(j.skipped || 0)}, failed ${(j.failed || []).length})</label>
      <progress id="enc-progress" max="100" value="${pct}">${pct}%</progress>
      ${(j.failed || []).length ? `<details><summary>Failures</summary><pre>${esc(JSON.stringify(j.failed, null, 2))}</pre></details>` : ''}`;
    return d;
  };
  // Poll while a job runs (started by us or someone else).
  const poll = async () => {
    const d = await refresh();
    if (seq !== session.seq) return;
    if (d && d.reencryption && d.reencryption.running) setTimeout(poll, 1000);
  };
  const run = async (btn, busy, path, ok) => {
    const buttons = $$('#enc-rotate, #enc-reencrypt-secrets, #enc-reencrypt-datakeys');
    buttons.forEach((b) => (b.disabled = true));
    let polling = true;
    const tick = async () => { if (!polling) return; await refresh(); if (polling && seq === session.seq) setTimeout(tick, 700); };
    setTimeout(tick, 300);
    await act(btn, st, busy, () => api('POST', path), (r) => (r.status === 206 ? `Partly done: ${msgOf(r, 'some items failed')}` : msgOf(r, ok)));
    polling = false;
    buttons.forEach((b) => (b.disabled = false));
    poll();
  };
  $('#enc-rotate').addEventListener('click', (e) => run(e.target, 'Rotating data keys…', '/api/admin/encryption/rotate-data-keys', 'Data keys rotated'));
  $('#enc-reencrypt-secrets').addEventListener('click', (e) => run(e.target, 'Re-encrypting secrets…', '/api/admin/encryption/reencrypt-secrets', 'Secrets re-encrypted'));
  $('#enc-reencrypt-datakeys').addEventListener('click', (e) => run(e.target, 'Re-encrypting data keys…', '/api/admin/encryption/reencrypt-data-keys', 'Data keys re-encrypted'));
  await poll();
}
