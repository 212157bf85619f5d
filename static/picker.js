// A user picker: type part of a login, name or email, pick from the matches (mouse or arrow
// keys + Enter). Nobody types a numeric id. ARIA combobox pattern (input + listbox).
// GET /api/users/search?query=... matches login, email and name.

import { esc, api } from './lib.js';

// Returns the picker's HTML; call attachPicker(id) after it is in the DOM.
export const pickerHtml = (id, label) => `<div class="picker" id="${id}">
  <label for="${id}-input">${esc(label)}</label>
  <input id="${id}-input" type="search" role="combobox" aria-autocomplete="list" aria-expanded="false" aria-controls="${id}-list" autocomplete="off" placeholder="login, name or email">
  <ul id="${id}-list" role="listbox" class="picker-list" aria-label="${esc(label)}: matches" hidden></ul>
  <div class="muted picker-chosen" id="${id}-chosen" aria-live="polite" data-testid="${id}-chosen"></div></div>`;

// Wires the picker; returns { get: () => chosen user or null, clear() }.
export function attachPicker(id) {
  const input = document.getElementById(`${id}-input`);
  const list = document.getElementById(`${id}-list`);
  const chosenEl = document.getElementById(`${id}-chosen`);
  let matches = []; let active = -1; let chosen = null; let seq = 0; let timer = null;
  const close = () => { list.hidden = true; input.setAttribute('aria-expanded', 'false'); input.removeAttribute('aria-activedescendant'); active = -1; };
  const paint = () => {
    list.innerHTML = matches.map((u, i) => `<li role="option" id="${id}-opt-${i}" data-index="${i}" aria-selected="${i === active}" data-testid="${id}-option-${esc(u.login)}">
      <b>${esc(u.login)}</b> <span class="muted">${esc(u.name || '')} · ${esc(u.email || '')}</span></li>`).join('') ||
      `<li class="muted" role="option" aria-disabled="true" aria-selected="false">No user matches.</li>`;
    list.hidden = false; input.setAttribute('aria-expanded', 'true');
    if (active >= 0) input.setAttribute('aria-activedescendant', `${id}-opt-${active}`); else input.removeAttribute('aria-activedescendant');
  };
  const choose = (u) => {
    chosen = u; input.value = u.login; close();
    chosenEl.textContent = `Chosen: ${u.login}${u.email ? ` <${u.email}>` : ''}`;
    chosenEl.dataset.userId = String(u.id);
  };
  const search = async () => {
    const q = input.value.trim(); const my = ++seq;
    if (!q) { matches = []; close(); return; }
    try {
      const r = await api('GET', '/api/users/search?' + new URLSearchParams({ query: q, perpage: 8, page: 1 }));
      if (my !== seq) return;
      matches = r.data.users || []; active = matches.length ? 0 : -1; paint();
    } catch (e) {
      if (my !== seq) return;
      matches = []; list.innerHTML = `<li class="status err" role="option" aria-disabled="true" aria-selected="false">${esc(e.message)}</li>`; list.hidden = false;
    }
  };
  input.addEventListener('input', () => { chosen = null; chosenEl.textContent = ''; delete chosenEl.dataset.userId; clearTimeout(timer); timer = setTimeout(search, 200); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!matches.length) return;
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length; paint();
    } else if (e.key === 'Enter' && !list.hidden && active >= 0) {
      e.preventDefault(); choose(matches[active]);
    } else if (e.key === 'Escape') close();
  });
  // mousedown, not click: it fires before the input's blur closes the list
  list.addEventListener('mousedown', (e) => {
    const li = e.target.closest('li[data-index]');
    if (li) { e.preventDefault(); choose(matches[Number(li.dataset.index)]); }
  });
  input.addEventListener('blur', () => setTimeout(close, 100));
  return { get: () => chosen, clear: () => { chosen = null; input.value = ''; chosenEl.textContent = ''; close(); } };
}
