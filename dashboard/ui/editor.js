// The definition editor: a plain <textarea> (so every browser feature, undo and screen
// readers work) with a line-number gutter and a mark layer behind the text that highlights the
// line and column of a validation error. Tab indents (two spaces); Escape then Tab leaves the
// editor. locate() turns an error's JSON path into a line and column when the API gives a path
// but no position.
import { h, uid } from '/ui/dom.js';

/** Line and column (1-based) of character offset `off` in `text`. */
export function lineCol(text, off) {
  let line = 1;
  let last = -1;
  for (let i = 0; i < off && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      last = i;
    }
  }
  return { line, column: off - last };
}

/** Offset of (line, column), both 1-based, clamped to the text. */
export function offsetOf(text, line, column) {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  const end = text.indexOf('\n', off);
  const lineEnd = end < 0 ? text.length : end;
  return Math.min(off + Math.max(0, (column || 1) - 1), lineEnd);
}

/**
 * Where the value at `path` starts in the JSON `text`: {line, column} or null.
 * Accepts "steps[0].request.url", "$.steps[0]", "/steps/0/request" (JSON pointer) and
 * "steps.0.request". A small scanner: it records the start of each value while parsing.
 */
export function locate(text, path) {
  if (!path || typeof path !== 'string') return null;
  let parts;
  if (path.startsWith('/')) {
    parts = path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  } else {
    parts = [];
    const re = /\[(\d+)\]|\[["']([^"']*)["']\]|([^.[\]]+)/g;
    let m;
    while ((m = re.exec(path.replace(/^\$\.?/, '')))) parts.push(m[1] ?? m[2] ?? m[3]);
  }
  let i = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  const skipString = () => {
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const readString = () => {
    const start = i;
    skipString();
    try { return JSON.parse(text.slice(start, i)); } catch { return null; }
  };
  const skipValue = () => {
    ws();
    const c = text[i];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) { i++; return undefined; }
      for (;;) {
        ws();
        if (c === '{') { readString(); ws(); i++; }
        skipValue();
        ws();
        if (text[i] === ',') { i++; continue; }
        i++;
        return undefined;
      }
    }
    while (i < text.length && !/[,}\]\s]/.test(text[i])) i++;
    return undefined;
  };
  ws();
  for (const part of parts) {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      let found = false;
      while (i < text.length) {
        ws();
        if (text[i] === '}') break;
        const key = readString();
        ws();
        i++; // ':'
        ws();
        if (key === part) { found = true; break; }
        skipValue();
        ws();
        if (text[i] === ',') i++;
        else break;
      }
      if (!found) return null;
    } else if (c === '[') {
      const want = Number(part);
      if (!Number.isInteger(want)) return null;
      i++;
      for (let k = 0; k < want; k++) {
        ws();
        if (text[i] === ']') return null;
        skipValue();
        ws();
        if (text[i] === ',') i++;
        else return null;
      }
      ws();
      if (text[i] === ']') return null;
    } else {
      return null;
    }
  }
  ws();
  return i < text.length ? lineCol(text, i) : null;
}

/**
 * createEditor({value, label, readOnly, onChange, onSave}) -> {el, textarea, value(), setValue(),
 * showError({line, column, message, where}), clearError(), focusAt(line, column)}.
 */
export function createEditor({ value = '', label = 'Definition (JSON)', readOnly = false, onChange, onSave, onRun } = {}) {
  const id = uid('editor');
  const gutterPre = h('pre', {});
  const gutter = h('div', { class: 'editor-gutter', 'aria-hidden': 'true' }, gutterPre);
  const markLine = h('div', { class: 'mark-line' });
  const markCol = h('div', { class: 'mark-col' });
  const marks = h('div', { class: 'editor-marks', 'aria-hidden': 'true' }, markLine, markCol);
  const errId = uid('editor-err');
  const ta = h('textarea', {
    id, class: 'code', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', wrap: 'off',
    name: 'definition', readonly: readOnly || null, 'aria-describedby': `${errId} ${id}-help`,
  });
  ta.value = value;
  const wrap = h('div', { class: 'editor' }, gutter, h('div', { class: 'editor-body' }, marks, ta));
  const pos = h('span', { 'aria-hidden': 'true' }, 'Line 1, column 1');
  const help = h('span', { id: `${id}-help`, class: 'kbd-help' },
    h('kbd', {}, 'Ctrl'), '+', h('kbd', {}, 'S'), ' save · ', h('kbd', {}, 'Ctrl'), '+', h('kbd', {}, 'Enter'), ' run · ',
    h('kbd', {}, 'Tab'), ' indents; ', h('kbd', {}, 'Esc'), ' then ', h('kbd', {}, 'Tab'), ' leaves the editor');
  const errBox = h('div', { id: errId, class: 'editor-error' });
  const el = h('div', { class: 'editor-wrap' },
    h('label', { for: id, class: 'label' }, label), wrap, h('div', { class: 'editor-bar' }, help, pos), errBox);

  let lines = 0;
  let errLine = 0;
  let errCol = 0;
  let escaped = false;
  let metrics = null;

  function measure() {
    const cs = getComputedStyle(ta);
    const probe = h('span', { class: 'code' }, 'M'.repeat(100));
    probe.style.position = 'absolute';
    probe.style.visibility = 'hidden';
    probe.style.whiteSpace = 'pre';
    probe.style.font = cs.font;
    document.body.append(probe);
    const cw = probe.getBoundingClientRect().width / 100;
    probe.remove();
    metrics = { lh: parseFloat(cs.lineHeight) || 20, padTop: parseFloat(cs.paddingTop) || 8, padLeft: parseFloat(cs.paddingLeft) || 8, cw: cw || 7.8 };
  }

  function drawGutter() {
    const n = ta.value.split('\n').length;
    if (n === lines) return;
    lines = n;
    const frag = [];
    for (let i = 1; i <= n; i++) {
      frag.push(i === errLine ? h('span', { class: 'err-line' }, String(i)) : String(i));
      frag.push('\n');
    }
    gutterPre.replaceChildren(...frag);
  }

  function place() {
    gutterPre.style.transform = `translateY(${-ta.scrollTop}px)`;
    if (!errLine) return;
    if (!metrics) measure();
    const top = metrics.padTop + (errLine - 1) * metrics.lh - ta.scrollTop;
    markLine.style.transform = `translateY(${top}px)`;
    const left = metrics.padLeft + Math.max(0, errCol - 1) * metrics.cw - ta.scrollLeft;
    markCol.style.transform = `translate(${left}px, ${top}px)`;
    markCol.style.display = errCol ? '' : 'none';
  }

  function updatePos() {
    const { line, column } = lineCol(ta.value, ta.selectionStart);
    pos.textContent = `Line ${line}, column ${column}`;
  }

  ta.addEventListener('scroll', place);
  ta.addEventListener('input', () => {
    lines = -1;
    drawGutter();
    updatePos();
    if (onChange) onChange(ta.value);
  });
  ta.addEventListener('keyup', updatePos);
  ta.addEventListener('click', updatePos);
  ta.addEventListener('keydown', (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && (ev.key === 's' || ev.key === 'S')) {
      ev.preventDefault();
      if (onSave) onSave();
      return;
    }
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 'Enter') {
      ev.preventDefault();
      if (onRun) onRun();
      return;
    }
    if (ev.key === 'Escape') {
      escaped = true;
      return;
    }
    if (ev.key === 'Tab' && !escaped && !readOnly && !ev.ctrlKey && !ev.altKey && !ev.metaKey) {
      ev.preventDefault();
      const s = ta.selectionStart;
      const e = ta.selectionEnd;
      const v = ta.value;
      if (s === e && !ev.shiftKey) {
        ta.setRangeText('  ', s, e, 'end');
      } else {
        // indent or outdent every selected line
        const ls = v.lastIndexOf('\n', s - 1) + 1;
        const block = v.slice(ls, e);
        const changed = ev.shiftKey ? block.replace(/^ {1,2}/gm, '') : block.replace(/^/gm, '  ');
        ta.setRangeText(changed, ls, e, 'select');
      }
      ta.dispatchEvent(new Event('input'));
      return;
    }
    escaped = false;
  });
  new ResizeObserver(() => { metrics = null; place(); }).observe(wrap);

  function clearError() {
    errLine = 0;
    errCol = 0;
    wrap.classList.remove('has-error');
    ta.removeAttribute('aria-invalid');
    errBox.replaceChildren();
    lines = -1;
    drawGutter();
  }

  function focusAt(line, column) {
    const off = offsetOf(ta.value, line, column);
    ta.focus();
    ta.setSelectionRange(off, off);
    // scroll the line into view (textarea has no API for it)
    if (!metrics) measure();
    const y = (line - 1) * metrics.lh;
    if (y < ta.scrollTop || y > ta.scrollTop + ta.clientHeight - 2 * metrics.lh) ta.scrollTop = Math.max(0, y - ta.clientHeight / 3);
    const x = (column - 1) * metrics.cw;
    if (x < ta.scrollLeft || x > ta.scrollLeft + ta.clientWidth - 40) ta.scrollLeft = Math.max(0, x - ta.clientWidth / 2);
    updatePos();
    place();
  }

  /** Marks the error; `line`/`column` may be missing (then only the message is shown). */
  function showError({ line, column, message, code, requestId, title }) {
    errLine = line ? Number(line) : 0;
    errCol = column ? Number(column) : 0;
    wrap.classList.toggle('has-error', !!errLine);
    ta.setAttribute('aria-invalid', 'true');
    lines = -1;
    drawGutter();
    // the message may name the spot itself ("invalid JSON at line 3, column 9: ...")
    const named = errLine && new RegExp(`\\bline ${errLine}\\b`, 'i').test(message || '');
    const where = errLine && !named ? `Line ${errLine}${errCol ? `, column ${errCol}` : ''}: ` : '';
    const goBtn = errLine ? h('button', { type: 'button', class: 'btn-link', onclick: () => focusAt(errLine, errCol || 1) }, 'Go to the error') : null;
    errBox.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' },
      h('strong', {}, title || 'The definition is not valid'),
      h('p', { class: 'alert-message' }, h('span', { class: 'where' }, where), message),
      h('p', { class: 'alert-meta' }, code ? h('code', {}, code) : null, requestId ? ` · request ${requestId}` : '', goBtn ? ' · ' : '', goBtn)));
    place();
  }

  drawGutter();
  return {
    el,
    textarea: ta,
    value: () => ta.value,
    setValue: (v) => {
      ta.value = v;
      lines = -1;
      drawGutter();
      clearError();
    },
    showError,
    clearError,
    focusAt,
  };
}
