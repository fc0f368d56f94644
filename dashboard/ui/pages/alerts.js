// A project's alerts: the open incidents first (which test, where, which rule, failing since
// when, what failed, the run that opened it), then the resolved ones, then the delivery ledger
// (every notification sent to a channel: sent, retrying, failed or muted, with its attempts and
// the reason), so a failed delivery and its cause are in plain sight. The open incidents and the
// ledger's first page refresh every 30 s while the page is open; older pages load on demand.
import { get, pp, qs } from '/ui/api.js';
import { emptyState, errorBox, field, fmtTime, h, pageHeader, timeEl } from '/ui/dom.js';

const REFRESH_MS = 30000;

// a delivery's status: word, icon and the badge colors of the run statuses (never color alone)
const DELIVERY = {
  sent: ['Sent', '✓', 'st-passed'],
  failed: ['Failed', '✗', 'st-failed'],
  retrying: ['Retrying', '↻', 'st-error'],
  muted: ['Muted', '–', 'st-none'],
  sending: ['Sending', '…', 'st-pending'],
};

function deliveryBadge(status) {
  const [word, icon, cls] = DELIVERY[status] || [status, '?', 'st-none'];
  return h('span', { class: ['badge', cls] }, h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, icon), word);
}

function stateBadge(state) {
  return state === 'open'
    ? h('span', { class: ['badge', 'st-failed'] }, h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, '!'), 'Open')
    : h('span', { class: ['badge', 'st-passed'] }, h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, '✓'), 'Resolved');
}

const TRANSITION = { opened: 'Incident opened', resolved: 'Incident resolved', reminder: 'Reminder', test: 'Test notification' };

function counts(n) {
  const parts = [];
  if (n.sent) parts.push(h('span', {}, `${n.sent} sent`));
  if (n.failed) parts.push(h('span', { class: 'check-fail' }, `${n.failed} failed`));
  if (n.pending) parts.push(h('span', {}, `${n.pending} pending`));
  if (n.muted) parts.push(h('span', { class: 'muted' }, `${n.muted} muted`));
  if (!parts.length) return h('span', { class: 'muted' }, 'none');
  return h('span', { class: 'delivery-counts' }, parts.flatMap((x, i) => (i ? [' · ', x] : [x])));
}

function incidentRow(p, i) {
  const runLink = (id, label) => (id ? h('a', { href: `/app/projects/${p.id}/runs/${id}` }, label) : null);
  return h('tr', { dataset: { incidentId: i.id } },
    h('td', { 'data-label': 'State' }, stateBadge(i.state)),
    h('td', { 'data-label': 'Test' }, h('a', { href: `/app/projects/${p.id}/tests/${i.test.id}`, class: 'row-title' }, i.test.name)),
    h('td', { 'data-label': 'Location' }, i.location),
    h('td', { 'data-label': 'Rule' }, i.rule.name),
    h('td', { 'data-label': i.state === 'open' ? 'Failing since' : 'Failing' }, i.state === 'open'
      ? timeEl(i.failing_since)
      : h('span', { class: 'wrap-anywhere' }, `${fmtTime(i.failing_since)} – ${fmtTime(i.resolved_at)}`)),
    h('td', { 'data-label': 'Failure' }, i.failure ? h('span', { class: 'wrap-anywhere' }, i.failure) : h('span', { class: 'muted' }, '—')),
    h('td', { 'data-label': 'Runs' }, h('span', { class: 'run-links' },
      runLink(i.opened_run_id, 'Run that opened it'), i.resolved_run_id ? ' · ' : null, runLink(i.resolved_run_id, 'Run that resolved it'))),
    h('td', { 'data-label': 'Notifications' }, counts(i.notifications)));
}

function incidentTable(p, caption, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'responsive incidents-table' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, ['State', 'Test', 'Location', 'Rule', 'Since', 'Failure', 'Runs', 'Notifications'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows)));
}

function ledgerRow(p, n) {
  const t = n.transition;
  const what = t.kind === 'test'
    ? TRANSITION.test
    : [`${TRANSITION[t.kind] || t.kind}${t.kind === 'reminder' ? ` ${t.seq}` : ''}: `,
      t.test ? h('a', { href: `/app/projects/${p.id}/tests/${t.test.id}` }, t.test.name) : 'a deleted test',
      t.location ? ` (${t.location})` : ''];
  return h('tr', { dataset: { notificationId: n.id, status: n.status } },
    h('td', { 'data-label': 'Status' }, deliveryBadge(n.status)),
    h('td', { 'data-label': 'Channel' }, n.channel.name, h('span', { class: 'muted' }, ` (${n.channel.kind})`)),
    h('td', { 'data-label': 'Notification' }, h('span', {}, what)),
    h('td', { 'data-label': 'Attempts', class: 'num' }, String(n.attempts)),
    h('td', { 'data-label': 'Reason' }, n.reason || n.response
      ? h('div', { class: 'wrap-anywhere' }, n.reason ? h('span', { class: n.status === 'failed' ? 'reason-failed' : null }, n.reason) : null,
        n.response ? h('div', { class: 'muted' }, `Answer: ${n.response}`) : null)
      : h('span', { class: 'muted' }, '—')),
    h('td', { 'data-label': 'Updated' }, timeEl(n.sent_at || n.updated_at)));
}

export async function render(ctx) {
  const p = ctx.project;
  ctx.setTitle(`Alerts · ${p.name}`);
  const refresh = h('button', { type: 'button', class: 'btn' }, 'Refresh');
  ctx.main.append(pageHeader('Alerts', refresh,
    h('a', { href: `/app/projects/${p.id}/settings/channels`, class: 'btn' }, 'Channels and rules')));

  const openBox = h('div');
  const resolvedBox = h('div');
  const ledgerBox = h('div');
  const resolvedMore = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more');
  const ledgerMore = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more');
  const status = h('select', { name: 'status' },
    [['', 'Any status'], ['failed', 'Failed'], ['retrying', 'Retrying'], ['sending', 'Sending'], ['sent', 'Sent'], ['muted', 'Muted']]
      .map(([v, l]) => h('option', { value: v, selected: (ctx.query.get('status') || '') === v }, l)));
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter deliveries' }, field('Delivery status', status));
  filters.addEventListener('submit', (ev) => ev.preventDefault());
  ctx.main.append(
    h('section', { class: 'card', 'aria-labelledby': 'open-title' }, h('h2', { id: 'open-title' }, 'Open incidents'), openBox),
    h('section', { class: 'card', 'aria-labelledby': 'resolved-title' }, h('h2', { id: 'resolved-title' }, 'Resolved incidents'), resolvedBox,
      h('div', { class: 'pager' }, resolvedMore)),
    h('section', { class: 'card', 'aria-labelledby': 'ledger-title' },
      h('h2', { id: 'ledger-title' }, 'Deliveries'),
      h('p', { class: 'muted' }, 'Every notification sent to a channel, newest first. A failed one says why.'),
      filters, ledgerBox, h('div', { class: 'pager' }, ledgerMore)));

  async function loadOpen() {
    try {
      const data = await get(`${pp(p.id, 'incidents')}${qs({ state: 'open', limit: 200 })}`, { signal: ctx.signal });
      const items = data.items || [];
      openBox.replaceChildren(items.length
        ? incidentTable(p, 'Open incidents, newest first', items.map((i) => incidentRow(p, i)))
        : emptyState('No open incidents', 'An incident opens when a test\'s scheduled runs fail as many times in a row as an alert rule says.'));
      if (data.next_cursor) openBox.append(h('p', { class: 'muted' }, `The ${items.length} most recent open incidents are shown.`));
    } catch (err) {
      if (err.name !== 'AbortError') openBox.replaceChildren(errorBox(err, 'Could not load the open incidents'));
    }
  }

  // a list with "Load more": fetch(cursor) -> page; draw(items, first) appends rows
  function pager(box, more, path, query, row, caption, table, empty) {
    let cursor = null;
    let tbody = null;
    async function load(reset) {
      if (reset) cursor = null;
      more.disabled = true;
      try {
        const data = await get(`${path}${qs({ ...query(), limit: 50, cursor })}`, { signal: ctx.signal });
        const items = data.items || [];
        if (reset) {
          tbody = h('tbody');
          box.replaceChildren(items.length ? table(caption, tbody) : empty());
        }
        for (const x of items) tbody.append(row(p, x));
        cursor = data.next_cursor || null;
        more.hidden = !cursor;
      } catch (err) {
        if (err.name !== 'AbortError') box.replaceChildren(errorBox(err, `Could not load the ${caption.toLowerCase()}`));
      } finally {
        more.disabled = false;
      }
    }
    more.addEventListener('click', () => load(false));
    return load;
  }

  const loadResolved = pager(resolvedBox, resolvedMore, pp(p.id, 'incidents'), () => ({ state: 'resolved' }), incidentRow,
    'Resolved incidents', (caption, tbody) => h('div', { class: 'table-wrap' }, h('table', { class: 'responsive incidents-table' },
      h('caption', { class: 'visually-hidden' }, `${caption}, newest first`),
      h('thead', {}, h('tr', {}, ['State', 'Test', 'Location', 'Rule', 'Failing', 'Failure', 'Runs', 'Notifications'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody)),
    () => emptyState('No resolved incidents yet', null));

  const loadLedger = pager(ledgerBox, ledgerMore, pp(p.id, 'notifications'), () => ({ status: status.value }), ledgerRow,
    'Deliveries', (caption, tbody) => h('div', { class: 'table-wrap' }, h('table', { class: 'responsive ledger-table' },
      h('caption', { class: 'visually-hidden' }, `${caption}, newest first`),
      h('thead', {}, h('tr', {}, ['Status', 'Channel', 'Notification', 'Attempts', 'Reason', 'Updated'].map((c) => h('th', { scope: 'col', class: c === 'Attempts' ? 'num' : null }, c)))),
      tbody)),
    () => emptyState(status.value ? 'No delivery with this status' : 'No deliveries yet',
      status.value ? null : 'When an incident opens or resolves, each channel of its alert rule gets a notification, listed here.'));

  status.addEventListener('change', () => {
    const u = new URLSearchParams();
    if (status.value) u.set('status', status.value);
    history.replaceState(null, '', location.pathname + (u.toString() ? `?${u}` : ''));
    loadLedger(true);
  });
  refresh.addEventListener('click', () => Promise.all([loadOpen(), loadResolved(true), loadLedger(true)]));

  for (const box of [openBox, resolvedBox, ledgerBox]) box.append(h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  await Promise.all([loadOpen(), loadResolved(true), loadLedger(true)]);
  const timer = setInterval(() => {
    if (document.hidden) return;
    loadOpen();
    if (ledgerMore.hidden) loadLedger(true); // only while the user has not paged further
  }, REFRESH_MS);
  ctx.onCleanup(() => clearInterval(timer));
}
