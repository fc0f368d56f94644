// Charts drawn as SVG by hand (no library): a time-series line chart with gaps, an optional
// area under the first series, a cursor that follows the pointer or the arrow keys and reads
// the values out, and the timings waterfall of one request (CSS bars sized through the CSSOM).
import { fmtMs, h, svg } from '/ui/dom.js';

function niceStep(range, count) {
  const raw = range / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs <= 36 * 3600e3) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

function timeTicks(from, to) {
  const span = to - from;
  const steps = [60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];
  const step = steps.find((s) => span / s <= 6) || steps[steps.length - 1];
  const offset = new Date().getTimezoneOffset() * 60e3;
  const out = [];
  for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) out.push(t);
  return out;
}

/**
 * lineChart({series: [{label, points: [{x: msEpoch, y: number|null}], area, dashed, dotClass}],
 *            from, to, yMax, yFormat(v, tickStep?), label, tipFormat, width}) -> element (svg +
 * legend + the line the cursor writes its values to). `label` is the text alternative.
 */
export function lineChart({ series, from, to, yMax, yFormat = String, label, tipFormat, width = 640 }) {
  const W = Math.max(300, Math.round(width));
  const H = 220;
  const M = { l: 52, r: 14, t: 12, b: 26 };
  const iw = W - M.l - M.r;
  const ih = H - M.t - M.b;
  const values = series.flatMap((s) => s.points.map((p) => p.y)).filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
  let top = yMax;
  if (top === undefined) {
    const max = values.length ? Math.max(...values) : 1;
    const step = niceStep(max || 1, 4);
    top = Math.max(step, Math.ceil((max * 1.08) / step) * step);
  }
  const x = (t) => M.l + ((t - from) / Math.max(1, to - from)) * iw;
  const y = (v) => M.t + ih - (v / (top || 1)) * ih;

  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label, tabindex: '0', focusable: 'true' });
  const grid = svg('g', {});
  const step = niceStep(top, 4);
  for (let v = 0; v <= top + 1e-9; v += step) {
    grid.append(svg('line', { x1: M.l, x2: W - M.r, y1: y(v), y2: y(v), class: 'grid' }));
    grid.append(svg('text', { x: M.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, yFormat(v, step)));
  }
  for (const t of timeTicks(from, to)) {
    grid.append(svg('line', { x1: x(t), x2: x(t), y1: M.t + ih, y2: M.t + ih + 4, class: 'axis' }));
    const anchor = x(t) > W - M.r - 24 ? 'end' : x(t) < M.l + 24 ? 'start' : 'middle';
    grid.append(svg('text', { x: x(t), y: H - 6, 'text-anchor': anchor }, timeLabel(t, to - from)));
  }
  grid.append(svg('line', { x1: M.l, x2: W - M.r, y1: M.t + ih, y2: M.t + ih, class: 'axis' }));
  root.append(grid);

  series.forEach((s, si) => {
    const n = si + 1;
    let d = '';
    let area = '';
    let run = [];
    const flushArea = () => {
      if (s.area && run.length) {
        area += `M${x(run[0].x)},${y(0)}${run.map((p) => `L${x(p.x)},${y(p.y)}`).join('')}L${x(run[run.length - 1].x)},${y(0)}Z`;
      }
      run = [];
    };
    for (const p of s.points) {
      if (p.y === null || p.y === undefined || Number.isNaN(p.y)) {
        flushArea();
        continue;
      }
      d += `${run.length ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`;
      run.push(p);
    }
    flushArea();
    if (area) root.append(svg('path', { d: area, class: `area-${n}` }));
    if (d) root.append(svg('path', { d, class: [`series-${n}`, s.dashed ? 'dashed' : null].filter(Boolean).join(' ') }));
    // a dot for isolated points (a run of one would draw no line), or for every point when the
    // series asks (dotClass(point) -> class)
    s.points.forEach((p, i) => {
      if (p.y === null || p.y === undefined) return;
      if (s.dotClass) {
        root.append(svg('circle', { cx: x(p.x), cy: y(p.y), r: 3, class: s.dotClass(p) }));
        return;
      }
      const prev = s.points[i - 1];
      const next = s.points[i + 1];
      const alone = (!prev || prev.y === null || prev.y === undefined) && (!next || next.y === null || next.y === undefined);
      if (alone) root.append(svg('circle', { cx: x(p.x), cy: y(p.y), r: 3, class: `dot-${n}` }));
    });
  });

  // cursor: pointer or arrow keys pick the nearest bucket; the values are written below
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const cursor = svg('line', { y1: M.t, y2: M.t + ih, class: 'cursor', visibility: 'hidden' });
  const dots = series.map((s, i) => svg('circle', { r: 4, class: `dot-${i + 1}`, visibility: 'hidden' }));
  root.append(cursor, ...dots);
  const tip = h('div', { class: 'chart-tip', 'aria-live': 'polite' }, '\u00a0');
  let idx = -1;
  function show(i) {
    if (!xs.length) return;
    idx = Math.max(0, Math.min(xs.length - 1, i));
    const t = xs[idx];
    cursor.setAttribute('x1', x(t));
    cursor.setAttribute('x2', x(t));
    cursor.setAttribute('visibility', 'visible');
    const parts = [];
    series.forEach((s, si) => {
      const p = s.points.find((q) => q.x === t);
      if (p && p.y !== null && p.y !== undefined) {
        dots[si].setAttribute('cx', x(t));
        dots[si].setAttribute('cy', y(p.y));
        dots[si].setAttribute('visibility', 'visible');
        parts.push(`${s.label} ${yFormat(p.y)}`);
      } else {
        dots[si].setAttribute('visibility', 'hidden');
        parts.push(`${s.label} —`);
      }
    });
    const when = new Date(t).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
    tip.textContent = tipFormat ? tipFormat(t, idx) : `${when}: ${parts.join(' · ')}`;
  }
  function hide() {
    cursor.setAttribute('visibility', 'hidden');
    for (const d of dots) d.setAttribute('visibility', 'hidden');
  }
  const hit = svg('rect', { x: M.l, y: M.t, width: iw, height: ih, class: 'hit' });
  root.append(hit);
  root.addEventListener('pointermove', (ev) => {
    const r = root.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    const t = from + ((px - M.l) / iw) * (to - from);
    let best = 0;
    xs.forEach((v, i) => { if (Math.abs(v - t) < Math.abs(xs[best] - t)) best = i; });
    show(best);
  });
  root.addEventListener('pointerleave', hide);
  root.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
      ev.preventDefault();
      show(idx < 0 ? xs.length - 1 : idx + (ev.key === 'ArrowRight' ? 1 : -1));
    } else if (ev.key === 'Home') {
      ev.preventDefault();
      show(0);
    } else if (ev.key === 'End') {
      ev.preventDefault();
      show(xs.length - 1);
    } else if (ev.key === 'Escape') {
      hide();
    }
  });
  root.addEventListener('blur', hide);

  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' },
    series.map((s, i) => h('span', {}, h('span', { class: `swatch swatch-${i + 1}` }), s.label)));
  return h('figure', { class: 'chart-figure' }, legend, root, tip);
}

/**
 * The timings waterfall of one request. The engine's timings are cumulative: each phase ends at
 * its value, measured from the start of the request (docs/tests.md, "The result document").
 */
export function waterfall(t) {
  if (!t) return null;
  const total = Number(t.total) || 0;
  const dns = Number(t.dns) || 0;
  const connect = Math.max(dns, Number(t.connect) || 0);
  const tls = Number(t.tls) || 0;
  const secure = Math.max(connect, tls);
  const fb = Math.max(secure, Number(t.first_byte) || 0);
  const phases = [
    ['DNS lookup', 'wf-dns', 0, dns],
    ['Connect', 'wf-connect', dns, connect],
    tls > 0 ? ['TLS', 'wf-tls', connect, secure] : null,
    ['Waiting (first byte)', 'wf-wait', secure, fb],
    ['Download', 'wf-download', fb, Math.max(fb, total)],
  ].filter(Boolean);
  const scale = Math.max(total, fb, 0.001);
  const rows = [];
  for (const [label, cls, s, e] of phases) {
    const bar = h('span', { class: ['wf-bar', cls] });
    bar.style.left = `${(s / scale) * 100}%`;
    bar.style.width = `${((e - s) / scale) * 100}%`;
    rows.push(h('span', { class: 'wf-label' }, label), h('span', { class: 'wf-track', 'aria-hidden': 'true' }, bar),
      h('span', { class: 'wf-value' }, fmtMs(e - s)));
  }
  rows.push(h('strong', { class: 'wf-label' }, 'Total'), h('span', {}), h('strong', { class: 'wf-value' }, fmtMs(total)));
  return h('div', { class: 'waterfall', role: 'group', 'aria-label': `Timings: total ${fmtMs(total)}` }, rows);
}
