// One run: its state, trigger, location and times, then the result document (why it failed,
// each step's checks, request, response and timings). A run that is not final yet is fetched
// again every second until it is, and the change is read out.
import { get, pp } from '/ui/api.js';
import { FINAL, announce, badge, fmtMs, fmtTime, h, pageHeader } from '/ui/dom.js';
import { runResultView, runSentence } from '/ui/runview.js';

export async function render(ctx) {
  const p = ctx.project;
  const runId = ctx.params.r;
  let run = await get(pp(p.id, 'runs', runId), { signal: ctx.signal });
  if (ctx.isStale()) return;
  ctx.setTitle(`Run of ${run.test_name || 'a test'} · ${p.name}`);
  const live = h('div', { class: 'run-live', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const meta = h('dl', { class: 'run-summary' });
  const body = h('div');
  ctx.main.append(
    pageHeader(`Run of ${run.test_name || 'a test'}`,
      h('a', { href: `/app/projects/${p.id}/tests/${run.test_id}`, class: 'btn' }, 'Open the test'),
      h('a', { href: `/app/projects/${p.id}/runs?test=${run.test_id}`, class: 'btn' }, 'Other runs')),
    h('section', { class: 'card', 'aria-label': 'Run' }, live, meta),
    h('section', { class: 'card', 'aria-labelledby': 'result-title' }, h('h2', { id: 'result-title' }, 'Result'), body));

  function draw() {
    live.replaceChildren(badge(run.status, 'badge-big'), h('span', {}, runSentence(run)));
    const item = (k, v) => h('div', { class: 'stat' }, h('dt', { class: 'stat-label' }, k), h('dd', { class: 'nowrap' }, v));
    meta.replaceChildren(
      item('Trigger', run.trigger || '—'),
      item('Location', run.location || '—'),
      item('Planned for', fmtTime(run.fire_time)),
      item('Started', fmtTime(run.started_at)),
      item('Finished', fmtTime(run.finished_at)),
      item('Duration', fmtMs(run.duration_ms)),
      item('Run id', h('code', {}, run.id)));
    if (FINAL.has(run.status)) body.replaceChildren(runResultView(run));
    else body.replaceChildren(h('p', { class: 'muted' }, 'The result appears here when the run finishes.'));
  }
  draw();
  while (!FINAL.has(run.status) && !ctx.signal.aborted) {
    await new Promise((r) => { setTimeout(r, 1000); });
    if (ctx.signal.aborted) return;
    try {
      const next = await get(pp(p.id, 'runs', runId), { signal: ctx.signal });
      const changed = next.status !== run.status;
      run = next;
      if (changed) {
        draw();
        announce(runSentence(run), FINAL.has(run.status) && run.status !== 'passed');
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
    }
  }
}
