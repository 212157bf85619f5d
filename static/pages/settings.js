// Settings: the auth.saml editor (edit, add, remove keys; review the diff; save) and every
// setting with its source.

import { $, $$, esc, heading, statusLine, skeletonRows, load, tryGet, failed, act, api, setStatus } from '../lib.js';

export default async function render({ page }) {
  $('#view').innerHTML = `${heading('Settings')}${statusLine()}
  <section class="panel" style="min-height:10rem"><h2>SAML (auth.saml)</h2>
    <p class="muted">Edit values, tick "remove" to delete a key, then review the changes before saving.</p>
    <div class="table-wrap"><table><thead><tr><th>Key</th><th>Value</th><th>Source</th><th>Remove</th></tr></thead><tbody id="saml-body">${skeletonRows(3, 4)}</tbody></table></div>
    <div class="row">
      <div><label for="saml-new-key">New key</label><input id="saml-new-key" type="text"></div>
      <div><label for="saml-new-value">Value</label><input id="saml-new-value" type="text"></div>
      <button type="button" class="secondary" id="saml-add">Add key</button>
    </div>
    <div class="row"><button type="button" id="saml-review">Review changes</button><button type="button" id="saml-save" disabled>Save changes</button></div>
    <div id="saml-diff" class="diff" data-testid="saml-diff"></div>
  </section>
  <section class="panel"><h2>All settings</h2><div id="all-settings"><div class="skeleton">&nbsp;</div></div></section>`;
  const st = $('#page-status');
  let original = {};
  let pending = null;
  const render = async () => {
    const r = await load(() => tryGet('/api/admin/settings-verbose'));
    if (!r) return;
    if (!r.ok) { failed(r, st, page.permission, '#saml-body', '#all-settings'); return; }
    const saml = r.data['auth.saml'] || {};
    original = Object.fromEntries(Object.entries(saml).map(([k, v]) => [k, v.value]));
    $('#saml-body').innerHTML = Object.keys(saml).sort().map((k, i) => `<tr data-key="${esc(k)}">
      <td><code>${esc(k)}</code></td>
      <td><input type="text" id="saml-val-${i}" data-key="${esc(k)}" class="saml-val" aria-label="Value of ${esc(k)}" value="${esc(saml[k].value)}"></td>
      <td><span class="badge">${esc(saml[k].source)}</span></td>
      <td><input type="checkbox" class="saml-rm" data-key="${esc(k)}" aria-label="Remove ${esc(k)}"></td></tr>`).join('') || '<tr><td colspan="4" class="muted">No auth.saml keys yet.</td></tr>';
    $('#all-settings').innerHTML = Object.keys(r.data).sort().map((sec) => `<details><summary>${esc(sec)}</summary><div class="table-wrap"><table>
      <thead><tr><th>Key</th><th>Value</th><th>Source</th></tr></thead><tbody>${Object.entries(r.data[sec]).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v.value)}</td><td>${esc(v.source)}</td></tr>`).join('')}</tbody></table></div></details>`).join('');
    pending = null; $('#saml-save').disabled = true; $('#saml-diff').innerHTML = '';
  };
  const invalidate = () => { pending = null; $('#saml-save').disabled = true; };
  $('#saml-body').addEventListener('input', invalidate);
  $('#saml-add').addEventListener('click', () => {
    const k = $('#saml-new-key').value.trim();
    if (!k) { setStatus(st, 'err', 'Enter a key name.'); return; }
    if ($(`#saml-body input.saml-val[data-key="${CSS.escape(k)}"]`)) { setStatus(st, 'err', `Key ${k} already exists; edit it in the table.`); return; }
    const empty = $('#saml-body td[colspan]'); if (empty) empty.parentElement.remove();
    const i = $$('#saml-body tr').length + 1000;
    $('#saml-body').insertAdjacentHTML('beforeend', `<tr data-key="${esc(k)}"><td><code>${esc(k)}</code> <span class="badge warn">new</span></td>
      <td><input type="text" id="saml-val-${i}" data-key="${esc(k)}" class="saml-val" aria-label="Value of ${esc(k)}" value="${esc($('#saml-new-value').value)}"></td><td></td>
      <td><input type="checkbox" class="saml-rm" data-key="${esc(k)}" aria-label="Remove ${esc(k)}"></td></tr>`);
    $('#saml-new-key').value = ''; $('#saml-new-value').value = '';
    setStatus(st, 'ok', `Key ${k} added to the editor; review and save to apply.`);
    invalidate();
  });
  $('#saml-review').addEventListener('click', () => {
    const updates = {}; const removals = [];
    const lines = [];
    $$('#saml-body input.saml-val').forEach((inp) => {
      const k = inp.dataset.key;
      const rm = $(`#saml-body input.saml-rm[data-key="${CSS.escape(k)}"]`).checked;
      if (rm) { if (k in original) { removals.push(k); lines.push(`<li><code>${esc(k)}</code>: <del>${esc(original[k])}</del> → <em>removed</em></li>`); } return; }
      if (!(k in original) || original[k] !== inp.value) {
        updates[k] = inp.value;
        lines.push(`<li><code>${esc(k)}</code>: <del>${k in original ? esc(original[k]) : '(unset)'}</del> → <ins>${esc(inp.value)}</ins></li>`);
      }
    });
    if (!lines.length) { $('#saml-diff').innerHTML = '<p class="muted">No changes.</p>'; pending = null; $('#saml-save').disabled = true; return; }
    pending = { updates: Object.keys(updates).length ? { 'auth.saml': updates } : {}, removals: removals.length ? { 'auth.saml': removals } : {} };
    $('#saml-diff').innerHTML = `<h3>Changes to save</h3><ul>${lines.join('')}</ul>`;
    $('#saml-save').disabled = false;
    $('#saml-save').focus();
  });
  $('#saml-save').addEventListener('click', async (e) => {
    if (!pending) return;
    if (await act(e.target, st, 'Saving settings…', () => api('PUT', '/api/admin/settings', pending), 'Settings saved')) {
      const m = st.textContent; await render(); setStatus(st, 'ok', m);
    } else e.target.disabled = false;
  });
  await render();
}
