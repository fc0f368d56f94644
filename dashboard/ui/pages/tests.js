// A project's tests: last status, uptime %, a row of the recent results (one colored cell per
// run, oldest to newest, each a link to the run) and the last run's time, with filters by
// name, tag and status kept in the address (so a filtered view can be shared). Refreshes
// itself every 15 s while open.
import { get, pp } from '/ui/api.js';
import { badge, emptyState, errorBox, field, fmtMs, fmtPercent, fmtTime, h, pageHeader, statusText, timeEl } from '/ui/dom.js';

const REFRESH_MS = 15000;

function recentCells(ctx, t) {
  const cells = (t.recent || []).map((r) => h('a', {
    href: `/app/projects/${ctx.project.id}/runs/${r.id}`,
    class: `c-${r.status}`,
    title: `${statusText(r.status)} · ${fmtTime(r.fire_time)}`,
    'aria-label': `${statusText(r.status)} at ${fmtTime(r.fire_time)}`,
  }));
  if (!cells.length) return h('span', { class: 'muted' }, 'no runs yet');
  const counts = { passed: 0, failed: 0, error: 0 };
  for (const r of t.recent) if (r.status in counts) counts[r.status] += 1;
  return h('div', { class: 'recent', role: 'group', 'aria-label': `Recent runs: ${counts.passed} passed, ${counts.failed} failed, ${counts.error} errors` }, cells);
}

function uptime(p) {
  if (p === null || p === undefined) return h('span', { class: 'muted' }, '—');
  return h('span', { class: Number(p) >= 99 ? 'uptime-good' : Number(p) < 90 ? 'uptime-bad' : '' }, fmtPercent(p, 2));
}

function statusOf(t) {
  return t.last_run ? t.last_run.status : 'none';
}

export async function render(ctx) {
  const p = ctx.project;
  ctx.setTitle(`Tests · ${p.name}`);
  const actions = [];
  if (ctx.canEdit()) actions.push(h('a', { href: `/app/projects/${p.id}/tests/new`, class: 'btn btn-primary' }, 'New test'));
  ctx.main.append(pageHeader('Tests', ...actions));

  const q = h('input', { type: 'search', name: 'q', value: ctx.query.get('q') || '', placeholder: 'Name contains…', 'data-shortcut': 'search', autocomplete: 'off' });
  const tag = h('select', { name: 'tag' }, h('option', { value: '' }, 'All tags'));
  const status = h('select', { name: 'status' },
    [['', 'Any status'], ['passed', 'Passed'], ['failed', 'Failed'], ['error', 'Error'], ['none', 'Never run'], ['running', 'Pending or running']]
      .map(([v, l]) => h('option', { value: v, selected: (ctx.query.get('status') || '') === v }, l)));
  const count = h('p', { class: 'muted', role: 'status' });
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter tests' },
    field('Search', q, null), field('Tag', tag), field('Last status', status), count);
  filters.addEventListener('submit', (ev) => ev.preventDefault());
  const body = h('div', { class: 'card' });
  const summary = h('p', { class: 'subtitle project-summary' });
  ctx.main.append(summary, filters, body);
  get(pp(p.id, 'stats'), { signal: ctx.signal }).then((st) => {
    const x = st && st.summary;
    if (!x || !x.runs) return;
    summary.textContent = `Last 24 h: ${x.runs} ${x.runs === 1 ? 'run' : 'runs'} · ${fmtPercent((x.passed / x.runs) * 100)} passed`
      + `${x.p95_ms !== null && x.p95_ms !== undefined ? ` · p95 ${fmtMs(x.p95_ms)}` : ''}`;
  }).catch(() => { /* the summary is a nicety; the list shows its own errors */ });

  let items = [];
  function syncUrl() {
    const u = new URLSearchParams();
    if (q.value) u.set('q', q.value);
    if (tag.value) u.set('tag', tag.value);
    if (status.value) u.set('status', status.value);
    const s = u.toString();
    history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
  }

  function draw() {
    const needle = q.value.trim().toLowerCase();
    const shown = items.filter((t) => {
      if (needle && !t.name.toLowerCase().includes(needle)) return false;
      if (tag.value && !(t.tags || []).includes(tag.value)) return false;
      const s = statusOf(t);
      if (status.value === 'running') return s === 'pending' || s === 'queued' || s === 'running';
      if (status.value && s !== status.value) return false;
      return true;
    });
    const n = (k) => `${k} ${k === 1 ? 'test' : 'tests'}`;
    count.textContent = shown.length === items.length ? n(items.length) : `${shown.length} of ${n(items.length)}`;
    if (!items.length) {
      body.replaceChildren(emptyState('No tests yet', 'A test is a JSON document: HTTP requests and the checks their answers must pass.',
        ctx.canEdit() ? h('a', { href: `/app/projects/${p.id}/tests/new`, class: 'btn btn-primary' }, 'Write your first test') : null));
      return;
    }
    if (!shown.length) {
      body.replaceChildren(emptyState('No test matches these filters', null,
        h('button', { type: 'button', class: 'btn', onclick: () => { q.value = ''; tag.value = ''; status.value = ''; syncUrl(); draw(); } }, 'Clear filters')));
      return;
    }
    const rows = shown.map((t) => h('tr', { dataset: { testId: t.id } },
      h('td', { 'data-label': 'Status' }, badge(statusOf(t))),
      h('td', { 'data-label': 'Test' },
        h('a', { href: `/app/projects/${p.id}/tests/${t.id}`, class: 'row-title' }, t.name),
        (t.tags || []).length ? h('div', {}, t.tags.map((x) => h('span', { class: 'tag' }, x))) : null),
      h('td', { 'data-label': 'Uptime', class: 'num' }, uptime(t.uptime_percent)),
      h('td', { 'data-label': 'Recent results' }, recentCells(ctx, t)),
      h('td', { 'data-label': 'Last run' }, t.last_run
        ? h('span', {}, h('a', { href: `/app/projects/${p.id}/runs/${t.last_run.id}` }, timeEl(t.last_run.finished_at || t.last_run.fire_time)),
          t.last_run.duration_ms !== null && t.last_run.duration_ms !== undefined ? h('span', { class: 'muted' }, ` · ${fmtMs(t.last_run.duration_ms)}`) : null)
        : h('span', { class: 'muted' }, 'never'))));
    body.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'responsive tests-table' },
      h('caption', { class: 'visually-hidden' }, 'Tests of this project'),
      h('thead', {}, h('tr', {}, ['Status', 'Test', 'Uptime', 'Recent results', 'Last run']
        .map((c) => h('th', { scope: 'col', class: c === 'Uptime' ? 'num' : null }, c)))),
      h('tbody', {}, rows))));
  }

  for (const el of [q, tag, status]) {
    el.addEventListener('input', () => { syncUrl(); draw(); });
  }

  async function load(first) {
    try {
      const data = await get(pp(p.id, 'tests'), { signal: ctx.signal });
      items = data.items || [];
      const tags = [...new Set(items.flatMap((t) => t.tags || []))].sort();
      const want = tag.value || ctx.query.get('tag') || '';
      tag.replaceChildren(h('option', { value: '' }, 'All tags'), ...tags.map((x) => h('option', { value: x, selected: x === want }, x)));
      draw();
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (first) body.replaceChildren(errorBox(err, 'Could not load the tests'));
    }
  }
  body.append(h('p', { class: 'loading', role: 'status' }, 'Loading tests…'));
  await load(true);
  const timer = setInterval(() => { if (!document.hidden) load(false); }, REFRESH_MS);
  ctx.onCleanup(() => clearInterval(timer));
}
