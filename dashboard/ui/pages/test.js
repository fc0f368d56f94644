// One test: the definition editor (Validate and Save show a validation error at the line and
// column where it occurs), "Run now" with the result drawn live (GET the run every 500 ms until
// it is final; the state is read out through an aria-live region), charts of response time
// (p50/p95) and pass rate, the recent runs and the versions. /tests/new is the same page
// with an empty test: Save creates it.
import { ApiError, del, get, post, pp, put, qs } from '/ui/api.js';
import { lineChart } from '/ui/chart.js';
import { createEditor, locate } from '/ui/editor.js';
import {
  FINAL, announce, badge, confirmDialog, emptyState, errorBox, field, fmtMs, fmtPercent, h, loading, notice, pageHeader, timeEl,
} from '/ui/dom.js';
import { runResultView, runSentence } from '/ui/runview.js';

const TEMPLATE = `{
  "name": "Health check",
  "tags": ["smoke"],
  "steps": [
    {
      "name": "service is up",
      "request": {"method": "GET", "url": "https://api.example.com/health"},
      "expect": {"status": 200},
      "assert": [
        "time < 1000",
        "$.status == \\"ok\\""
      ]
    }
  ]
}
`;

const RANGES = [
  { key: '15m', label: '15 min', span: 900e3, bucket: 15 },
  { key: '1h', label: '1 h', span: 3600e3, bucket: 60 },
  { key: '24h', label: '24 h', span: 86400e3, bucket: 900 },
  { key: '7d', label: '7 d', span: 7 * 86400e3, bucket: 3600 },
  { key: '30d', label: '30 d', span: 30 * 86400e3, bucket: 6 * 3600 },
];

const POLL_MS = 500;
const REFRESH_MS = 30000;
const POLL_GIVE_UP_MS = 180e3;

/** The editor error for an API error: line/column from the answer, or found from its path. */
function editorError(err, text) {
  const d = err.details || {};
  let line = d.line;
  let column = d.column;
  if (!line && d.path) {
    const at = locate(text, d.path);
    if (at) ({ line, column } = at);
  }
  return { line, column, message: err.message, code: err.code, requestId: err.requestId };
}

function locationKey(p) {
  return `rampart.location.${p}`;
}

// ---- charts -----------------------------------------------------------------------------

function chartsCard(ctx, testId) {
  const card = h('section', { class: 'card', 'aria-labelledby': 'charts-title' });
  const body = h('div');
  let current = RANGES[2];
  const buttons = RANGES.map((r) => h('button', { type: 'button', 'aria-pressed': r === current ? 'true' : 'false', onclick: () => select(r) }, r.label));
  const summary = h('p', { class: 'muted' });
  card.append(h('div', { class: 'card-head' }, h('h2', { id: 'charts-title' }, 'Response time and pass rate'),
    h('div', { class: 'segmented', role: 'group', 'aria-label': 'Time range' }, buttons)), summary, body);

  async function load(quiet) {
    const to = Date.now();
    const from = to - current.span;
    if (!quiet) body.replaceChildren(loading('Loading the charts…'));
    let data;
    try {
      data = await get(`${pp(ctx.project.id, 'tests', testId, 'stats')}${qs({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket: current.bucket })}`, { signal: ctx.signal });
    } catch (err) {
      if (err.name === 'AbortError' || quiet) return;
      body.replaceChildren(errorBox(err, 'Could not load the statistics'));
      return;
    }
    const points = (data.points || []).map((p) => {
      const t = typeof p.t === 'number' ? (p.t < 1e11 ? p.t * 1000 : p.t) : Date.parse(p.t);
      const runs = Number(p.runs) || 0;
      let rate = null;
      if (runs > 0 && p.passed !== undefined) rate = (Number(p.passed) / runs) * 100;
      else if (p.pass_rate !== null && p.pass_rate !== undefined) rate = p.pass_rate <= 1 ? p.pass_rate * 100 : p.pass_rate;
      return { t, runs, passed: Number(p.passed) || 0, failed: (Number(p.failed) || 0) + (Number(p.error) || 0), rate, p50: p.p50_ms ?? p.p50 ?? null, p95: p.p95_ms ?? p.p95 ?? null };
    }).filter((p) => !Number.isNaN(p.t)).sort((a, b) => a.t - b.t);
    const runs = points.reduce((n, p) => n + p.runs, 0);
    const passed = points.reduce((n, p) => n + p.passed, 0);
    const lastP95 = [...points].reverse().find((p) => p.p95 !== null);
    summary.textContent = runs
      ? `${runs} ${runs === 1 ? 'run' : 'runs'} in the last ${current.label} · ${fmtPercent((passed / runs) * 100)} passed${lastP95 ? ` · latest p95 ${fmtMs(lastP95.p95)}` : ''}`
      : `No finished runs in the last ${current.label}.`;
    if (!runs) {
      body.replaceChildren(emptyState('Nothing to chart yet', 'Run the test or schedule it: each finished run adds to these charts.'));
      return;
    }
    // one chart per column from 900 px, so each takes half the card's width
    const full = body.clientWidth || 640;
    const width = window.matchMedia('(min-width: 900px)').matches ? (full - 16) / 2 : full;
    const latency = lineChart({
      width,
      series: [
        { label: 'p50', points: points.map((p) => ({ x: p.t, y: p.p50 })), area: true },
        { label: 'p95', points: points.map((p) => ({ x: p.t, y: p.p95 })), dashed: true },
      ],
      from, to, yFormat: (v, step) => (step && step < 1 && v ? `${v.toFixed(step < 0.1 ? 2 : 1)} ms` : fmtMs(v)),
      label: `Response time, p50 and p95, last ${current.label}${lastP95 ? `; latest p95 ${fmtMs(lastP95.p95)}` : ''}`,
    });
    const rate = lineChart({
      width,
      series: [{
        label: 'pass rate', points: points.map((p) => ({ x: p.t, y: p.runs ? p.rate : null })), area: true,
        dotClass: (p) => (p.y >= 100 ? 'dot-pass' : 'dot-fail'),
      }],
      from, to, yMax: 100, yFormat: (v) => `${Math.round(v)} %`,
      label: `Pass rate, last ${current.label}: ${fmtPercent((passed / runs) * 100)} of ${runs} runs passed`,
      tipFormat: (t) => {
        const p = points.find((q) => q.t === t);
        const when = new Date(t).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
        return p && p.runs ? `${when}: ${fmtPercent(p.rate)} of ${p.runs} runs passed (${p.failed} not)` : `${when}: no runs`;
      },
    });
    body.replaceChildren(h('div', { class: 'charts' },
      h('div', { class: 'chart-box', dataset: { chart: 'latency' } }, h('h3', {}, 'Response time'), latency),
      h('div', { class: 'chart-box', dataset: { chart: 'pass-rate' } }, h('h3', {}, 'Pass rate'), rate)));
  }
  function select(r) {
    current = r;
    buttons.forEach((b, i) => b.setAttribute('aria-pressed', RANGES[i] === r ? 'true' : 'false'));
    load();
  }
  return { card, load };
}

// ---- recent runs ------------------------------------------------------------------------

function recentRunsCard(ctx, testId) {
  const card = h('section', { class: 'card', 'aria-labelledby': 'recent-title' });
  const body = h('div');
  card.append(h('div', { class: 'card-head' }, h('h2', { id: 'recent-title' }, 'Recent runs'),
    h('a', { href: `/app/projects/${ctx.project.id}/runs?test=${testId}` }, 'All runs of this test')), body);
  async function load() {
    try {
      const data = await get(`${pp(ctx.project.id, 'runs')}${qs({ test: testId, limit: 10 })}`, { signal: ctx.signal });
      const items = data.items || [];
      if (!items.length) {
        body.replaceChildren(h('p', { class: 'muted' }, 'No runs yet.'));
        return;
      }
      body.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' },
        h('thead', {}, h('tr', {}, ['Status', 'Started', 'Trigger', 'Location', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, items.map((r) => h('tr', {},
          h('td', { 'data-label': 'Status' }, h('a', { href: `/app/projects/${ctx.project.id}/runs/${r.id}`, 'aria-label': `Run ${r.status}, details` }, badge(r.status))),
          h('td', { 'data-label': 'Started' }, timeEl(r.started_at || r.fire_time)),
          h('td', { 'data-label': 'Trigger' }, r.trigger),
          h('td', { 'data-label': 'Location' }, r.location),
          h('td', { 'data-label': 'Duration' }, fmtMs(r.duration_ms))))))));
    } catch (err) {
      if (err.name !== 'AbortError') body.replaceChildren(errorBox(err, 'Could not load the runs'));
    }
  }
  return { card, load };
}

// ---- run now ----------------------------------------------------------------------------

function runCard(ctx, testId, isDirty, afterRun) {
  const p = ctx.project;
  const card = h('section', { class: 'card run-card', 'aria-labelledby': 'run-title' });
  const env = h('select', { name: 'environment_id' }, h('option', { value: '' }, 'No environment'));
  const loc = h('input', { type: 'text', name: 'location', value: localStorage.getItem(locationKey(p.id)) || 'default', autocomplete: 'off', pattern: '[a-z0-9][a-z0-9_-]{0,31}' });
  const runBtn = h('button', { type: 'submit', class: 'btn btn-primary', disabled: !ctx.canEdit() }, 'Run now');
  const status = h('div', { class: 'run-live', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const result = h('div', { class: 'run-output' });
  const formAlert = h('div', { class: 'form-alert' });
  const form = h('form', { novalidate: true },
    formAlert,
    h('div', { class: 'form-grid cols-2' }, field('Environment', env), field('Location', loc, 'Where a worker runs it, e.g. "default".')),
    h('div', { class: 'form-actions' }, runBtn,
      ctx.canEdit() ? null : h('span', { class: 'muted' }, 'Viewers cannot start runs.')));
  card.append(h('h2', { id: 'run-title' }, 'Run now'), form, status, result);

  get(pp(p.id, 'environments'), { signal: ctx.signal }).then((data) => {
    for (const e of data.items || []) env.append(h('option', { value: e.id }, e.name));
  }).catch(() => { /* environments are optional here; the settings page shows their errors */ });

  let polling = false;
  async function poll(runId) {
    const started = Date.now();
    let last = '';
    while (!ctx.signal.aborted) {
      let run;
      try {
        run = await get(pp(p.id, 'runs', runId), { signal: ctx.signal });
      } catch (err) {
        if (err.name === 'AbortError') return;
        status.replaceChildren(errorBox(err, 'Lost track of the run'));
        return;
      }
      const sentence = runSentence(run);
      if (run.status !== last) {
        last = run.status;
        status.replaceChildren(badge(run.status, 'badge-big'), h('span', { class: 'run-sentence' }, sentence),
          h('a', { href: `/app/projects/${p.id}/runs/${runId}` }, 'Open the run'));
      }
      if (FINAL.has(run.status)) {
        result.replaceChildren(runResultView(run));
        announce(sentence, run.status !== 'passed');
        afterRun();
        return;
      }
      if (Date.now() - started > POLL_GIVE_UP_MS) {
        status.append(notice('Still not finished after 3 minutes: is a worker serving this location? The run page keeps the result when it arrives.', 'warning'));
        return;
      }
      await new Promise((r) => { setTimeout(r, POLL_MS); });
    }
  }

  async function run() {
    if (polling || !ctx.canEdit()) return;
    formAlert.replaceChildren();
    if (isDirty()) formAlert.append(notice('You have unsaved changes: this runs the saved version. Save first to run your edits.', 'warning'));
    polling = true;
    runBtn.disabled = true;
    runBtn.textContent = 'Running…';
    result.replaceChildren();
    status.replaceChildren(badge('pending', 'badge-big'), h('span', {}, 'Starting the run…'));
    const body = {};
    if (env.value) body.environment_id = env.value;
    if (loc.value.trim()) {
      body.location = loc.value.trim();
      localStorage.setItem(locationKey(p.id), body.location);
    }
    try {
      const r = await post(pp(p.id, 'tests', testId, 'run'), body);
      announce('Run started');
      await poll(r.run_id || r.id);
    } catch (err) {
      if (err.name !== 'AbortError') {
        status.replaceChildren();
        formAlert.append(errorBox(err, 'Could not start the run'));
      }
    } finally {
      polling = false;
      runBtn.disabled = false;
      runBtn.textContent = 'Run now';
    }
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run();
  });
  return { card, run };
}

// ---- versions ---------------------------------------------------------------------------

function versionsBlock(ctx, test, editor, onLoad) {
  const summary = h('summary', {}, `Versions (current: ${test.current_version})`);
  const det = h('details', { class: 'sub versions' }, summary);
  const list = h('div');
  det.append(list);
  /** After a save: the new current version, and the list is read again when opened. */
  det.refresh = () => {
    summary.textContent = `Versions (current: ${test.current_version})`;
    delete list.dataset.loaded;
    list.replaceChildren();
    det.open = false;
  };
  det.addEventListener('toggle', async () => {
    if (!det.open || list.dataset.loaded) return;
    list.replaceChildren(loading());
    try {
      const data = await get(pp(ctx.project.id, 'tests', test.id, 'versions'), { signal: ctx.signal });
      list.dataset.loaded = '1';
      const items = data.items || [];
      list.replaceChildren(h('table', { class: 'responsive' },
        h('thead', {}, h('tr', {}, ['Version', 'Saved', 'Size', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, items.map((v) => {
          let load = null;
          if (v.version !== test.current_version && ctx.canEdit()) {
            load = h('button', { type: 'button', class: 'btn btn-small' }, 'Load into the editor');
            load.addEventListener('click', async () => {
              try {
                const full = await get(pp(ctx.project.id, 'tests', test.id, 'versions', String(v.version)), { signal: ctx.signal });
                editor.setValue(full.definition_text || JSON.stringify(full.definition, null, 2));
                onLoad(v.version);
                editor.textarea.focus();
              } catch (err) {
                if (err.name !== 'AbortError') list.append(errorBox(err, `Could not load version ${v.version}`));
              }
            });
          }
          return h('tr', {},
            h('td', { 'data-label': 'Version' }, `v${v.version}${v.version === test.current_version ? ' (current)' : ''}`),
            h('td', { 'data-label': 'Saved' }, timeEl(v.created_at)),
            h('td', { 'data-label': 'Size' }, v.size !== undefined ? `${v.size} bytes` : '—'),
            h('td', {}, load));
        }))));
    } catch (err) {
      if (err.name !== 'AbortError') list.replaceChildren(errorBox(err, 'Could not load the versions'));
    }
  });
  return det;
}

// ---- the page ---------------------------------------------------------------------------

export async function render(ctx) {
  const p = ctx.project;
  const isNew = !ctx.params.t || ctx.params.t === 'new';
  let test = null;
  if (!isNew) test = await get(pp(p.id, 'tests', ctx.params.t), { signal: ctx.signal });
  if (ctx.isStale()) return;
  ctx.setTitle(isNew ? `New test · ${p.name}` : `${test.name} · ${p.name}`);

  let saved = isNew ? TEMPLATE : (test.definition_text || JSON.stringify(test.definition, null, 2));
  const dirtyMark = h('span', { class: 'dirty-dot', hidden: true }, '● Unsaved changes');
  const isDirty = () => editor.value() !== saved;
  const onBeforeUnload = (ev) => {
    if (isDirty()) {
      ev.preventDefault();
      ev.returnValue = '';
    }
  };
  window.addEventListener('beforeunload', onBeforeUnload);
  ctx.onCleanup(() => window.removeEventListener('beforeunload', onBeforeUnload));

  const validateBtn = h('button', { type: 'button', class: 'btn' }, 'Validate');
  const saveBtn = h('button', { type: 'button', class: 'btn btn-primary', disabled: !ctx.canEdit() }, isNew ? 'Create test' : 'Save');
  const editorNote = h('div', { class: 'editor-note', role: 'status' });
  let runner = null;
  let versions = null;
  const editor = createEditor({
    value: saved,
    label: 'Definition (JSON)',
    readOnly: !ctx.canEdit(),
    onChange: () => {
      dirtyMark.hidden = isNew || !isDirty();
      editorNote.replaceChildren();
    },
    onSave: () => save(),
    onRun: () => { if (runner) runner.run(); },
  });

  async function validate() {
    editor.clearError();
    editorNote.replaceChildren();
    validateBtn.disabled = true;
    try {
      await post(pp(p.id, 'tests', 'validate'), { definition: editor.value() });
      editorNote.replaceChildren(notice('✓ The definition is valid.', 'success'));
      announce('The definition is valid');
    } catch (err) {
      showEditorError(err);
    } finally {
      validateBtn.disabled = false;
    }
  }

  function showEditorError(err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.code === 'invalid_definition' || err.field === 'definition' || err.details.line || err.details.path) {
      const e = editorError(err, editor.value());
      editor.showError(e);
      if (e.line) editor.focusAt(e.line, e.column || 1);
    } else {
      editorNote.replaceChildren(errorBox(err, isNew ? 'Could not create the test' : 'Could not save'));
    }
  }

  async function save() {
    if (!ctx.canEdit()) return;
    editor.clearError();
    editorNote.replaceChildren();
    saveBtn.disabled = true;
    try {
      if (isNew) {
        const t = await post(pp(p.id, 'tests'), { definition: editor.value() });
        saved = editor.value();
        announce('Test created');
        ctx.navigate(`/app/projects/${p.id}/tests/${t.id}`, { replace: true });
        return;
      }
      const t = await put(pp(p.id, 'tests', test.id), { definition: editor.value() });
      saved = editor.value();
      dirtyMark.hidden = true;
      if (t && t.current_version) test.current_version = t.current_version;
      if (t && t.name && t.name !== test.name) {
        test.name = t.name;
        ctx.main.querySelector('h1').textContent = t.name;
        ctx.setTitle(`${t.name} · ${p.name}`);
      }
      versionLabel.textContent = `version ${test.current_version}`;
      if (versions) versions.refresh();
      editorNote.replaceChildren(notice(`✓ Saved as version ${test.current_version}.`, 'success'));
      announce(`Saved as version ${test.current_version}`);
    } catch (err) {
      showEditorError(err);
    } finally {
      saveBtn.disabled = !ctx.canEdit();
    }
  }
  validateBtn.addEventListener('click', validate);
  saveBtn.addEventListener('click', save);

  const versionLabel = h('span', {}, isNew ? 'not saved yet' : `version ${test.current_version}`);
  const editorCard = h('section', { class: 'card', 'aria-labelledby': 'def-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'def-title' }, 'Definition'), h('span', { class: 'muted' }, versionLabel, ' ', dirtyMark)),
    editor.el, editorNote,
    h('div', { class: 'form-actions' }, validateBtn, saveBtn,
      h('a', { href: '/api/v1/openapi.json', class: 'muted', target: '_blank', rel: 'noopener' }, 'API reference')),
    isNew ? h('p', { class: 'hint' }, 'The test takes its name and tags from the definition. See docs/tests.md for every key.') : null);

  if (isNew) {
    ctx.main.append(pageHeader('New test'), editorCard);
    if (!ctx.canEdit()) editorCard.prepend(notice('Viewers cannot create tests.', 'warning'));
    editor.textarea.focus();
    return;
  }

  const deleteBtn = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-danger' }, 'Delete') : null;
  const header = pageHeader(test.name, deleteBtn);
  const sub = h('div', { class: 'subtitle' },
    test.last_run ? badge(test.last_run.status) : null,
    (test.tags || []).length ? h('span', {}, test.tags.map((x) => h('span', { class: 'tag' }, x))) : null,
    test.uptime_percent !== null && test.uptime_percent !== undefined ? h('span', {}, `Uptime ${fmtPercent(test.uptime_percent, 2)}`) : null,
    h('a', { href: `/app/projects/${p.id}/schedules?test=${test.id}` }, 'Schedules'));
  const charts = chartsCard(ctx, test.id);
  const recent = recentRunsCard(ctx, test.id);
  runner = runCard(ctx, test.id, isDirty, () => { recent.load(); charts.load(); });
  versions = versionsBlock(ctx, test, editor, (v) => {
    dirtyMark.hidden = !isDirty();
    editorNote.replaceChildren(notice(`Loaded version ${v}. Save to make it the current version.`, 'info'));
  });
  editorCard.append(versions);
  ctx.main.append(header, sub,
    h('div', { class: 'grid-2' }, editorCard, h('div', {}, runner.card, recent.card)),
    charts.card);

  if (deleteBtn) {
    deleteBtn.addEventListener('click', async () => {
      if (!await confirmDialog(`Delete “${test.name}”?`, 'The test, its versions, schedules and results are deleted. This cannot be undone.')) return;
      try {
        await del(pp(p.id, 'tests', test.id));
        announce('Test deleted');
        ctx.navigate(`/app/projects/${p.id}/tests`, { replace: true });
      } catch (err) {
        header.after(errorBox(err, 'Could not delete the test'));
      }
    });
  }
  recent.load();
  charts.load();
  // a monitoring page: new results arrive without a reload (not while the chart is in use)
  const timer = setInterval(() => {
    if (document.hidden) return;
    recent.load();
    if (!charts.card.contains(document.activeElement)) charts.load(true);
  }, REFRESH_MS);
  ctx.onCleanup(() => clearInterval(timer));
}
