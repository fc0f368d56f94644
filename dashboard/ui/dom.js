// DOM helpers shared by every page: element builders (h, svg), formatting of times,
// durations and statuses, the error box, form error marking, the live region and the copy
// button. Nothing here knows the API. The page's CSP forbids inline styles, so styles are set
// only through classes or the CSSOM (el.style.x = ...), never a style="" attribute.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
    return;
  }
  el.append(child instanceof Node ? child : document.createTextNode(String(child)));
}

function setAttrs(el, attrs, isSvg) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'style') Object.assign(el.style, v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && !isSvg) el.value = v;
    else if ((k === 'checked' || k === 'selected' || k === 'disabled') && !isSvg) el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** h('a', {href: '/x', class: 'link'}, 'text', child, [more]) -> an HTML element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs, false);
  append(el, children);
  return el;
}

/** svg('rect', {x: 1, ...}) -> an SVG element. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs, true);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let idSeq = 0;
export function uid(prefix = 'id') {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}

// ---- formatting -------------------------------------------------------------------------

export function parseTime(t) {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return new Date(t < 1e11 ? t * 1000 : t);
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtTime(t) {
  const d = parseTime(t);
  if (!d) return '—';
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function fmtRelative(t) {
  const d = parseTime(t);
  if (!d) return '—';
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const abs = Math.abs(s);
  if (abs < 5) return s >= 0 ? 'just now' : 'in a moment';
  const unit = abs < 60 ? [abs, 's'] : abs < 3600 ? [Math.round(abs / 60), 'min']
    : abs < 86400 ? [Math.round(abs / 3600), 'h'] : [Math.round(abs / 86400), 'd'];
  return s >= 0 ? `${unit[0]} ${unit[1]} ago` : `in ${unit[0]} ${unit[1]}`;
}

/** A <time> element: relative text, the full date as its tooltip. */
export function timeEl(t, relative = true) {
  const d = parseTime(t);
  if (!d) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: d.toISOString(), title: fmtTime(d) }, relative ? fmtRelative(d) : fmtTime(d));
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '—';
  const v = Number(ms);
  if (v === 0) return '0 ms';
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60000) return `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
  return `${Math.floor(v / 60000)} min ${Math.round((v % 60000) / 1000)} s`;
}

export function fmtInterval(s) {
  if (s % 86400 === 0) return s === 86400 ? 'every day' : `every ${s / 86400} days`;
  if (s % 3600 === 0) return s === 3600 ? 'every hour' : `every ${s / 3600} h`;
  if (s % 60 === 0) return s === 60 ? 'every minute' : `every ${s / 60} min`;
  return `every ${s} s`;
}

export function fmtPercent(p, digits = 1) {
  if (p === null || p === undefined) return '—';
  const v = Number(p);
  return `${v >= 99.995 || v === 0 ? v.toFixed(0) : v.toFixed(digits)} %`;
}

const STATUS_TEXT = {
  passed: 'Passed', failed: 'Failed', error: 'Error', pending: 'Pending', queued: 'Queued',
  running: 'Running', none: 'Never run',
};
export const FINAL = new Set(['passed', 'failed', 'error']);

export function statusText(s) {
  return STATUS_TEXT[s] || s || 'Never run';
}

const STATUS_ICON = { passed: '✓', failed: '✗', error: '!', pending: '…', queued: '…', running: '↻' };

/** A status badge: icon + word (color is never the only cue). */
export function badge(status, extraClass) {
  const s = status || 'none';
  return h('span', { class: ['badge', `st-${s}`, extraClass] },
    h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, STATUS_ICON[s] || '–'), statusText(s));
}

// ---- feedback ----------------------------------------------------------------------------

/** Says `text` through the polite live region (screen readers); optional assertive. */
export function announce(text, assertive = false) {
  const el = document.getElementById(assertive ? 'live-assertive' : 'live');
  if (!el) return;
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 30);
}

/** The API's error as a visible alert: message, code and request id (for support). */
export function errorBox(err, title) {
  const e = err || {};
  return h('div', { class: 'alert alert-error', role: 'alert' },
    h('strong', {}, title || 'Something went wrong'),
    h('p', { class: 'alert-message' }, e.message || String(err)),
    e.code || e.requestId
      ? h('p', { class: 'alert-meta' },
        e.code ? h('code', {}, e.code) : null, e.status ? ` · HTTP ${e.status}` : '',
        e.requestId ? ` · request ${e.requestId}` : '')
      : null);
}

export function notice(text, kind = 'info') {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** Clears the error marks of a form. */
export function clearFormErrors(form) {
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  const box = form.querySelector('.form-alert');
  if (box) clear(box);
}

/** Shows an API error on a form: next to the named field when the API names one. */
export function showFormError(form, err, title) {
  clearFormErrors(form);
  const box = form.querySelector('.form-alert');
  const field = err && err.field ? form.querySelector(`[name="${CSS.escape(err.field)}"]`) : null;
  if (field) {
    const id = uid('err');
    field.setAttribute('aria-invalid', 'true');
    const prev = field.getAttribute('aria-describedby');
    field.setAttribute('aria-describedby', prev ? `${prev} ${id}` : id);
    const msg = h('p', { class: 'field-error', id }, err.message);
    (field.closest('.field') || field.parentElement).append(msg);
    field.focus();
  }
  if (box) box.append(errorBox(err, field ? 'Please fix the marked field' : title || 'Could not save'));
  else if (!field) form.prepend(errorBox(err, title));
}

/** A labeled form field: field('Name', input, 'hint'). Gives the input an id if it has none. */
export function field(label, input, hint, extraClass) {
  if (!input.id) input.id = uid('f');
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: uid('hint') }, hint);
    input.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: ['field', extraClass] }, h('label', { for: input.id }, label), input, hintEl);
}

/** A button that copies `getText()` to the clipboard and says so. */
export function copyButton(getText, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'btn btn-small' }, label);
  b.addEventListener('click', async () => {
    const text = typeof getText === 'function' ? getText() : getText;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      const ta = h('textarea', { class: 'offscreen', readonly: true }, text);
      document.body.append(ta);
      ta.select();
      try { ok = document.execCommand('copy'); } catch { ok = false; }
      ta.remove();
    }
    b.textContent = ok ? 'Copied' : 'Copy failed: select the text';
    announce(ok ? 'Copied to the clipboard' : 'Copy failed; select the text and copy it');
    setTimeout(() => { b.textContent = label; }, 2000);
  });
  return b;
}

/** A page heading that receives focus after navigation. */
export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-header' },
    h('h1', { tabindex: '-1', class: 'page-title' }, title),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

export function emptyState(title, text, action) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), text ? h('p', {}, text) : null, action || null);
}

/** Pretty-prints JSON text when it is JSON; otherwise returns it unchanged. */
export function prettyJson(text) {
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  const t = text.trim();
  if (!t || (t[0] !== '{' && t[0] !== '[')) return text;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return text;
  }
}

export function slugify(s) {
  return s.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
}

/** A confirm dialog (native <dialog>); resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel = 'Delete', danger = true) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'submit', value: 'ok', class: ['btn', danger ? 'btn-danger' : 'btn-primary'] }, confirmLabel);
    const titleId = uid('dlg');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('form', { method: 'dialog' },
        h('h2', { id: titleId }, title), h('p', {}, text),
        h('div', { class: 'form-actions' },
          h('button', { type: 'submit', value: 'cancel', class: 'btn' }, 'Cancel'), ok)));
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
    ok.focus();
  });
}
