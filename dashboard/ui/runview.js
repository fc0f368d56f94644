// One run's result document drawn for people (used by the run page and by "Run now" on the
// test page): why it failed first, then every step with its checks (expression, actual value,
// pass/fail, message), the request as sent, the response (status, headers, body — pretty JSON
// when it is JSON) and the timings waterfall. Field names follow worker/result.c.
import { waterfall } from '/ui/chart.js';
import { badge, fmtMs, h, prettyJson } from '/ui/dom.js';

const REASONS = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found',
  304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 401: 'Unauthorized',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 410: 'Gone', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

function stepStatus(s) {
  if (s.skipped) return 'skipped';
  if (s.error) return 'error';
  const checks = s.assertions || [];
  if (checks.some((c) => !c.passed && c.severity !== 'warning')) return 'failed';
  if (checks.some((c) => !c.passed)) return 'warning';
  return 'passed';
}

function stepTitle(s, i) {
  return `Step ${i + 1}${s.iteration !== undefined ? ` (iteration ${s.iteration})` : ''}: ${s.name || ''}`;
}

function headerRows(headers) {
  const list = Array.isArray(headers) ? headers : Object.entries(headers || {}).map(([name, value]) => ({ name, value }));
  if (!list.length) return h('p', { class: 'muted' }, 'No headers.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'kv' },
    h('tbody', {}, list.map((x) => h('tr', {}, h('th', { scope: 'row' }, x.name), h('td', {}, String(x.value)))))));
}

function bodyBlock(text, encoding, label) {
  if (text === undefined || text === null || text === '') return h('p', { class: 'muted' }, 'Empty body.');
  if (encoding === 'base64') {
    return h('details', { class: 'sub' }, h('summary', {}, `Binary ${label} (base64, ${text.length} characters)`), h('pre', { class: 'body' }, text));
  }
  const pretty = prettyJson(text);
  return h('pre', { class: 'body', tabindex: '0', 'aria-label': label }, h('code', {}, pretty));
}

function checkResult(c) {
  if (c.passed) return h('span', { class: 'check-pass' }, '✓ Pass');
  if (c.severity === 'warning') return h('span', { class: 'check-warn' }, '! Warning');
  return h('span', { class: 'check-fail' }, '✗ Fail');
}

function checksTable(checks) {
  if (!checks || !checks.length) return h('p', { class: 'muted' }, 'This step has no checks.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'checks responsive' },
    h('thead', {}, h('tr', {}, ['Result', 'Check', 'Actual value', 'Message'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, checks.map((c) => h('tr', { class: !c.passed && c.severity !== 'warning' ? 'failed-check' : null },
      h('td', { 'data-label': 'Result' }, checkResult(c)),
      h('td', { 'data-label': 'Check' }, h('code', {}, c.expr || c.expression || '')),
      h('td', { 'data-label': 'Actual value' }, c.actual !== undefined && c.actual !== null ? h('code', {}, String(c.actual)) : h('span', { class: 'muted' }, '—')),
      h('td', { 'data-label': 'Message' }, c.message || (c.passed ? '' : '—')))))));
}

function stepView(s, i, openAll) {
  const st = stepStatus(s);
  const summaryBits = [h('span', { class: 'step-name' }, stepTitle(s, i))];
  if (s.skipped) summaryBits.push(h('span', { class: 'badge st-none' }, 'Skipped'));
  else {
    if (s.response) {
      summaryBits.push(h('span', { class: 'badge st-none' }, `HTTP ${s.response.status}`));
    }
    summaryBits.push(badge(st === 'warning' ? 'passed' : st));
    if (s.timings) summaryBits.push(h('span', { class: 'muted nowrap' }, fmtMs(s.timings.total)));
  }
  const det = h('details', { class: ['step', `st-${st}-step`], open: openAll || st === 'failed' || st === 'error' || null },
    h('summary', {}, summaryBits));
  if (s.skipped) {
    det.append(h('div', { class: 'step-body' }, h('p', { class: 'muted' }, 'This step did not run (its "if" was false, its "each" list was empty, or the test had stopped).')));
    return det;
  }
  const body = h('div', { class: 'step-body' });
  if (s.error) body.append(h('div', { class: 'alert alert-error', role: 'note' }, h('strong', {}, 'Could not run: '), s.error));
  body.append(h('section', { 'aria-label': 'Checks' }, h('h3', {}, 'Checks'), checksTable(s.assertions)));
  if (s.request) {
    const r = s.request;
    body.append(h('section', { 'aria-label': 'Request' }, h('h3', {}, 'Request'),
      h('p', { class: 'reqline' }, h('span', { class: 'method' }, r.method), ' ', r.url),
      h('details', { class: 'sub' }, h('summary', {}, `Request headers (${(r.headers || []).length})`), headerRows(r.headers)),
      r.body ? h('details', { class: 'sub' }, h('summary', {}, 'Request body'), bodyBlock(r.body, null, 'request body')) : null));
  }
  if (s.response) {
    const r = s.response;
    const size = r.body_size !== undefined ? `${r.body_size} bytes` : '';
    body.append(h('section', { 'aria-label': 'Response' }, h('h3', {}, 'Response'),
      h('p', { class: 'reqline' }, h('strong', {}, `${r.status} ${REASONS[r.status] || ''}`), size ? h('span', { class: 'muted' }, ` · ${size}`) : null,
        r.body_truncated ? h('span', { class: 'muted' }, ' · body cut at the worker\'s cap') : null),
      h('details', { class: 'sub' }, h('summary', {}, `Response headers (${(r.headers || []).length})`), headerRows(r.headers)),
      bodyBlock(r.body, r.body_encoding, 'response body')));
  }
  if (s.captures && s.captures.length) {
    body.append(h('section', { 'aria-label': 'Captures' }, h('h3', {}, 'Captured variables'),
      h('table', { class: 'kv' }, h('tbody', {}, s.captures.map((c) => h('tr', {}, h('th', { scope: 'row' }, c.name),
        h('td', {}, c.value === undefined ? h('span', { class: 'muted' }, 'no match') : typeof c.value === 'string' ? c.value : JSON.stringify(c.value))))))));
  }
  if (s.timings) body.append(h('section', { 'aria-label': 'Timings' }, h('h3', {}, 'Timings'), waterfall(s.timings)));
  det.append(body);
  return det;
}

/** The "why it failed" box: every failed error-severity check and the run error. */
export function whyFailed(run) {
  const res = run.result || {};
  const items = [];
  (res.steps || []).forEach((s, i) => {
    if (s.error) items.push(h('li', {}, h('strong', {}, stepTitle(s, i)), ` could not run: ${s.error}`));
    for (const c of s.assertions || []) {
      if (!c.passed && c.severity !== 'warning') {
        items.push(h('li', {}, h('strong', {}, stepTitle(s, i)), ' — ', h('code', {}, c.expr || ''), ': ',
          c.message || 'failed', c.actual !== undefined && c.actual !== null && !(c.message || '').includes(String(c.actual))
            ? h('span', {}, ' (actual ', h('code', {}, String(c.actual)), ')') : null));
      }
    }
  });
  const err = run.error || res.error;
  if (err && !items.length) items.push(h('li', {}, err));
  if (!items.length) return null;
  const isError = run.status === 'error';
  return h('div', { class: ['why', isError ? 'why-error' : null], role: 'region', 'aria-label': isError ? 'Why the run could not complete' : 'Why it failed' },
    h('h3', {}, isError ? 'Why the run could not complete' : 'Why it failed'), h('ul', {}, items));
}

/** Summary figures and the steps of a finished run. */
export function runResultView(run, { openAll = false } = {}) {
  const res = run.result;
  if (!res) {
    if (run.error) return h('div', {}, whyFailed(run));
    return h('p', { class: 'muted' }, 'No result document for this run.');
  }
  const counts = res.counts || {};
  const steps = res.steps || [];
  const stat = (label, value) => h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), h('span', {}, value));
  return h('div', { class: 'run-result' },
    whyFailed(run),
    h('div', { class: 'run-summary' },
      stat('Steps', String(steps.length)),
      stat('Checks', String(counts.assertions ?? steps.reduce((n, s) => n + (s.assertions || []).length, 0))),
      stat('Failed', String(counts.failed ?? 0)),
      stat('Warnings', String(counts.warnings ?? 0)),
      stat('Duration', fmtMs(res.duration_ms ?? run.duration_ms))),
    steps.length ? steps.map((s, i) => stepView(s, i, openAll || steps.length === 1)) : h('p', { class: 'muted' }, 'No step ran.'));
}

/** A one-line sentence about a run's state, for the live region. */
export function runSentence(run) {
  const res = run.result || {};
  const c = res.counts || {};
  switch (run.status) {
    case 'pending': return 'Run created, waiting for the queue…';
    case 'queued': return 'Run queued, waiting for a worker…';
    case 'running': return 'Running…';
    case 'passed': return `Passed: ${c.assertions ?? 0} checks passed in ${fmtMs(run.duration_ms ?? res.duration_ms)}.`;
    case 'failed': return `Failed: ${c.failed ?? '?'} of ${c.assertions ?? '?'} checks failed.`;
    case 'error': return `Error: ${run.error || res.error || 'the run could not complete'}.`;
    default: return `Status: ${run.status}`;
  }
}
