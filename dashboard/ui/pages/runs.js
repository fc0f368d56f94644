// A project's runs, newest first, filtered by test and status (kept in the address), with
// cursor pagination ("Load more").
import { get, pp, qs } from '/ui/api.js';
import { badge, emptyState, errorBox, field, fmtMs, h, pageHeader, timeEl } from '/ui/dom.js';

export async function render(ctx) {
  const p = ctx.project;
  ctx.setTitle(`Runs · ${p.name}`);
  const test = h('select', { name: 'test' }, h('option', { value: '' }, 'All tests'));
  const status = h('select', { name: 'status' },
    [['', 'Any status'], ['passed', 'Passed'], ['failed', 'Failed'], ['error', 'Error'], ['running', 'Running'], ['queued', 'Queued'], ['pending', 'Pending']]
      .map(([v, l]) => h('option', { value: v, selected: (ctx.query.get('status') || '') === v }, l)));
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter runs' }, field('Test', test), field('Status', status));
  filters.addEventListener('submit', (ev) => ev.preventDefault());
  const tbody = h('tbody');
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' },
    h('caption', { class: 'visually-hidden' }, 'Runs, newest first'),
    h('thead', {}, h('tr', {}, ['Status', 'Test', 'Fired', 'Trigger', 'Location', 'Duration', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody));
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more');
  const body = h('div', { class: 'card' });
  const msg = h('div');
  ctx.main.append(pageHeader('Runs'), filters, body);
  body.append(msg, table, h('div', { class: 'pager' }, more));

  try {
    const tests = await get(pp(p.id, 'tests'), { signal: ctx.signal });
    const want = ctx.query.get('test') || '';
    for (const t of tests.items || []) test.append(h('option', { value: t.id, selected: t.id === want }, t.name));
  } catch (err) {
    if (err.name === 'AbortError') return;
  }

  let cursor = null;
  async function load(reset) {
    if (reset) {
      cursor = null;
      tbody.replaceChildren();
      msg.replaceChildren();
    }
    more.disabled = true;
    try {
      const data = await get(`${pp(p.id, 'runs')}${qs({ test: test.value, status: status.value, limit: 50, cursor })}`, { signal: ctx.signal });
      for (const r of data.items || []) {
        tbody.append(h('tr', {},
          h('td', { 'data-label': 'Status' }, h('a', { href: `/app/projects/${p.id}/runs/${r.id}`, 'aria-label': `${r.status}: open the run` }, badge(r.status))),
          h('td', { 'data-label': 'Test' }, h('a', { href: `/app/projects/${p.id}/tests/${r.test_id}` }, r.test_name || r.test_id)),
          h('td', { 'data-label': 'Fired' }, timeEl(r.fire_time)),
          h('td', { 'data-label': 'Trigger' }, r.trigger),
          h('td', { 'data-label': 'Location' }, r.location),
          h('td', { 'data-label': 'Duration' }, fmtMs(r.duration_ms)),
          h('td', { 'data-label': 'Error' }, r.error ? h('span', { class: 'muted' }, r.error) : '')));
      }
      cursor = data.next_cursor || null;
      more.hidden = !cursor;
      if (!tbody.children.length) msg.replaceChildren(emptyState('No runs match', 'Runs appear here when a test runs: from "Run now", a schedule or the CI trigger.'));
    } catch (err) {
      if (err.name !== 'AbortError') msg.replaceChildren(errorBox(err, 'Could not load the runs'));
    } finally {
      more.disabled = false;
    }
  }
  for (const el of [test, status]) {
    el.addEventListener('change', () => {
      const u = new URLSearchParams();
      if (test.value) u.set('test', test.value);
      if (status.value) u.set('status', status.value);
      history.replaceState(null, '', location.pathname + (u.toString() ? `?${u}` : ''));
      load(true);
    });
  }
  more.addEventListener('click', () => load(false));
  await load(true);
}
