// The web UI's user journeys, driven in headless Debian chromium with Playwright core. Started
// by run.sh, which provides a running dashboard, scheduler and worker, a test target and these
// variables: RAMPART_URL, RAMPART_ADMIN_EMAIL, RAMPART_ADMIN_PASSWORD, RAMPART_LOCATION (the
// worker's private job location), TARGET_URL (target.py), ARTIFACTS (screenshot folder),
// CHROMIUM. Each journey asserts what a person sees (headings, text, visible elements); the
// first failure of a journey fails it with a screenshot (FAILED-<journey>.png) and the journeys
// that depend on it are skipped as failed. The page must never log a CSP violation or a
// JavaScript error. Last line: "journeys: N passed, N failed".
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const URL0 = need('RAMPART_URL');
const EMAIL = need('RAMPART_ADMIN_EMAIL');
const PASSWORD = need('RAMPART_ADMIN_PASSWORD');
const LOCATION = need('RAMPART_LOCATION');
const TARGET = need('TARGET_URL');
const ART = need('ARTIFACTS');
const T = 15000; // default wait for something to appear

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`journeys.mjs: ${name} is not set; run it through tests/browser/run.sh BUILD`);
    process.exit(2);
  }
  return v;
}

// The stack's private database (run.sh names it rampart_ui_<id> and the location ui-<id>), for
// the data a journey makes as the worker and the senders would (finished runs, ledger rows).
const DSN = `${need('RAMPART_TEST_PG')} dbname=rampart_ui_${LOCATION.replace(/^ui-/, '')}`;
const PY_SQL = `import json, sys, psycopg2
con = psycopg2.connect(sys.argv[1])
con.autocommit = True
cur = con.cursor()
cur.execute(sys.argv[2], json.loads(sys.argv[3]))
print(json.dumps(cur.fetchall() if cur.description else [], default=str))
con.close()`;

/** Runs one SQL statement with %s parameters (psycopg2) on the stack's database; the rows. */
function sql(query, params = []) {
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY_SQL, DSN, query, JSON.stringify(params)], { encoding: 'utf8' }));
}

class Failure extends Error {}
function check(cond, what) {
  if (!cond) throw new Failure(what);
}

// ---- helpers ----------------------------------------------------------------------------

let page;
const pageErrors = [];
const shots = [];

async function shot(name, fullPage = true) {
  const file = path.join(ART, `${name}.png`);
  await page.evaluate(() => window.scrollTo(0, 0)); // the sticky top bar stays on top
  await page.screenshot({ path: file, fullPage });
  shots.push(path.basename(file));
}

/** Waits until `locator` is visible; fails with `what` otherwise. */
async function visible(locator, what, timeout = T) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    throw new Failure(`not visible after ${timeout} ms: ${what}`);
  }
  return locator.first();
}

/** Waits until the text of `locator` matches `re`. */
async function textMatches(locator, re, what, timeout = T) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    try {
      last = (await locator.first().innerText({ timeout: 1000 })) || '';
      if (re.test(last)) return last;
    } catch { /* not there yet */ }
    await page.waitForTimeout(200);
  }
  throw new Failure(`${what}: expected ${re}, saw ${JSON.stringify(last.slice(0, 300))}`);
}

async function heading(name, timeout = T) {
  return visible(page.getByRole('heading', { level: 1, name }), `page heading "${name}"`, timeout);
}

/** Every visible form control has an accessible name (label, aria-label or aria-labelledby). */
async function allControlsLabelled(where) {
  const bad = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter((el) => el.offsetParent !== null)
    .filter((el) => {
      if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
      if (el.tagName === 'BUTTON') return !el.textContent.trim();
      return !(el.labels && el.labels.length);
    })
    .map((el) => el.outerHTML.slice(0, 120)));
  check(!bad.length, `${where}: form controls without a label: ${bad.join(' | ')}`);
}

async function noHorizontalScroll(where) {
  const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  check(sw <= cw + 1, `${where}: the page scrolls sideways at ${cw} px (content ${sw} px wide)`);
}

// ---- the journeys -----------------------------------------------------------------------

const S = {}; // what one journey leaves for the next: project id, test id, ...

const DEFINITION = (target) => `{
  "name": "Checkout status",
  "tags": ["checkout", "smoke"],
  "steps": [
    {
      "name": "status endpoint is healthy",
      "request": {"method": "GET", "url": "${target}/api/status"},
      "expect": {"status": 200},
      "assert": [
        "$.status == \\"ok\\"",
        "time < 5000"
      ]
    }
  ]
}
`;

const journeys = [
  ['log in', async () => {
    await page.goto(`${URL0}/`);
    await heading('Log in to Rampart');
    check(new URL(page.url()).pathname === '/app/login', `/ should lead to the login page, got ${page.url()}`);
    await allControlsLabelled('login');
    await page.getByLabel('E-mail').fill(EMAIL);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await textMatches(page.getByRole('alert'), /wrong e-mail or password/i, 'a wrong password shows the API\'s message');
    await shot('01-login-error');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await heading('Projects');
    await visible(page.getByRole('button', { name: 'Log out' }), 'the log-out button');
    await shot('02-projects-empty');
  }],

  ['create a project', async () => {
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'New project' }) });
    if (!(await form.isVisible())) await page.getByRole('button', { name: 'New project' }).click();
    await form.getByLabel('Name', { exact: true }).fill('Checkout API');
    check(await form.getByLabel('Slug').inputValue() === 'checkout-api', 'the slug is derived from the name');
    await form.getByRole('button', { name: 'Create project' }).click();
    await heading('Tests');
    S.project = page.url().match(/\/app\/projects\/([0-9a-f-]{36})\/tests/)?.[1];
    check(S.project, `the project's tests page, got ${page.url()}`);
    await visible(page.getByText('No tests yet'), 'the empty test list');
    await textMatches(page.getByRole('navigation', { name: 'Project' }), /Checkout API/, 'the project name in the top bar');
    // the project list shows it too
    await page.getByRole('link', { name: 'Projects', exact: true }).click();
    await heading('Projects');
    await visible(page.getByRole('link', { name: 'Checkout API' }), 'the new project in the list');
    await shot('03-projects');
    await page.getByRole('link', { name: 'Checkout API' }).click();
    await heading('Tests');
  }],

  ['create a test, with validation errors shown where they are', async () => {
    await page.getByRole('link', { name: 'New test' }).first().click();
    await heading('New test');
    const editor = page.getByLabel('Definition (JSON)');
    await allControlsLabelled('test editor');
    // 1. a JSON syntax error: a trailing comma on line 11, found at the "]" of line 12
    const good = DEFINITION(TARGET);
    const syntax = good.replace('"time < 5000"', '"time < 5000",');
    await editor.fill(syntax);
    await page.getByRole('button', { name: 'Validate' }).click();
    const alert = page.locator('.editor-error [role=alert]');
    await textMatches(alert, /invalid JSON at line 12, column 7: trailing comma/, 'a syntax error names its line and column');
    await visible(page.locator('.editor.has-error .mark-line'), 'the highlighted error line');
    await textMatches(page.locator('.editor-gutter .err-line'), /^12$/, 'line 12 marked in the gutter');
    // 2. a mistake the test language finds: a typo in a key, on line 9
    const typo = good.replace('"assert": [', '"asert": [');
    await editor.fill(typo);
    await page.getByRole('button', { name: 'Validate' }).click();
    await textMatches(alert, /Line 9, column 7: .*unknown key `asert`; did you mean `assert`/, 'an unknown key is located and explained');
    await textMatches(page.locator('.editor-gutter .err-line'), /^9$/, 'line 9 marked in the gutter');
    const caret = await page.evaluate(() => {
      const ta = document.querySelector('textarea[name=definition]');
      return ta.value.slice(0, ta.selectionStart).split('\n').length;
    });
    check(caret === 9, `the cursor is put on the error's line (9), found ${caret}`);
    await shot('04-editor-validation-error');
    // 3. "Create test" refuses it the same way
    await page.getByRole('button', { name: 'Create test' }).click();
    await textMatches(alert, /unknown key `asert`/, 'Save shows the same located error');
    // 4. fixed: valid, then created
    await editor.fill(good);
    await page.getByRole('button', { name: 'Validate' }).click();
    await visible(page.getByText('The definition is valid.'), 'the valid message');
    await page.getByRole('button', { name: 'Create test' }).click();
    await heading('Checkout status');
    S.test = page.url().match(/\/tests\/([0-9a-f-]{36})/)?.[1];
    check(S.test, `the test page, got ${page.url()}`);
    await visible(page.getByText('version 1'), 'the version label');
  }],

  ['run it and see the failure explained', async () => {
    await page.getByLabel('Location').fill(LOCATION);
    await page.getByRole('button', { name: 'Run now' }).click();
    const live = page.locator('.run-card .run-live');
    check(await live.getAttribute('aria-live') === 'polite', 'the run status is an aria-live region');
    await textMatches(live, /Failed: 2 of 3 checks failed/, 'the run ends failed, read out in the live region', 90000);
    const why = page.getByRole('region', { name: 'Why it failed' });
    await textMatches(why, /expect status 200/, 'the reason names the status expectation');
    await textMatches(why, /503/, 'the reason shows the actual status 503');
    await textMatches(why, /\$\.status == "ok"[\s\S]*degraded/, 'the reason shows the failed assertion and its actual value');
    const checks = page.locator('.run-card table.checks');
    await textMatches(checks, /✗ Fail[\s\S]*503/, 'the checks table lists the failure with the actual value');
    await textMatches(checks, /✓ Pass[\s\S]*time < 5000/, 'the checks table lists the passing check');
    await textMatches(page.locator('.run-card pre.body'), /"status": "degraded",\n\s+"database"/, 'the JSON response body is pretty-printed');
    await textMatches(page.locator('.run-card .waterfall'), /Connect[\s\S]*Waiting \(first byte\)[\s\S]*Total/, 'the timings waterfall');
    await textMatches(page.locator('.run-card'), /503 Service Unavailable/, 'the response status');
    await shot('05-test-run-failed');
    // the run's own page
    await page.locator('.run-card').getByRole('link', { name: 'Open the run' }).click();
    await heading('Run of Checkout status');
    await textMatches(page.locator('.run-live'), /Failed/, 'the run page shows the status');
    await textMatches(page.locator('.run-summary').first(), /manual[\s\S]*ui-/, 'trigger and location');
    await visible(page.getByRole('region', { name: 'Why it failed' }), 'the explanation on the run page');
    await textMatches(page.locator('.step').first(), /GET\s+http:\/\/127\.0\.0\.1:\d+\/api\/status/, 'the request as sent');
    await page.locator('.step summary').first().press('Enter'); // keyboard: closes the step
    check(await page.locator('.step').first().getAttribute('open') === null, 'Enter on a step\'s summary toggles it');
    await page.locator('.step summary').first().press('Enter');
    await shot('06-run-detail');
  }],

  ['edit the test: a new version with Ctrl+S', async () => {
    await page.goto(`${URL0}/app/projects/${S.project}/tests/${S.test}`);
    await heading('Checkout status');
    const editor = page.getByLabel('Definition (JSON)');
    const text = await editor.inputValue();
    await editor.fill(text.replace('"time < 5000"', '"time < 4000"'));
    await visible(page.getByText('● Unsaved changes'), 'the unsaved-changes mark');
    await editor.press('Control+s');
    await visible(page.getByText('✓ Saved as version 2.'), 'the new version');
    check(!(await page.getByText('● Unsaved changes').isVisible()), 'the mark goes away once saved');
    await page.getByText('Versions (current: 2)').click();
    await visible(page.getByRole('cell', { name: 'v1', exact: true }), 'version 1 in the history');
    await visible(page.getByRole('cell', { name: 'v2 (current)' }), 'version 2, current');
    await page.reload();
    await heading('Checkout status');
    check((await page.getByLabel('Definition (JSON)').inputValue()).includes('"time < 4000"'), 'the saved text comes back after a reload');
  }],

  ['schedule it', async () => {
    await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Schedules' }).click();
    await heading('Schedules');
    await visible(page.getByText('No schedules yet'), 'the empty schedule list');
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'New schedule' }) });
    await allControlsLabelled('schedules');
    // a wrong cron expression: the API's message next to the field
    await form.getByLabel('On a cron schedule').check();
    await form.getByLabel('Cron expression').fill('61 * * * *');
    await form.getByLabel('Locations').fill(LOCATION);
    await form.getByRole('button', { name: 'Create schedule' }).click();
    await visible(form.getByRole('alert'), 'the refusal of a bad cron expression');
    await shot('07-schedule-error');
    await form.getByLabel('At a fixed interval').check();
    check(!(await form.getByLabel('Cron expression').isVisible()), 'the cron fields hide in interval mode');
    await form.getByLabel('Every').fill('5');
    await form.getByLabel('Unit').selectOption('1');
    await form.getByRole('button', { name: 'Create schedule' }).click();
    const row = page.locator('table.schedules-table tbody tr').first();
    await textMatches(row, /Checkout status[\s\S]*every 5 s[\s\S]*ui-/, 'the schedule in the list');
    const sw = row.getByRole('switch');
    check(await sw.getAttribute('aria-checked') === 'true', 'the schedule is enabled');
    await sw.click();
    await page.waitForFunction(() => document.querySelector('table.schedules-table [role=switch]').getAttribute('aria-checked') === 'false');
    await sw.click();
    await page.waitForFunction(() => document.querySelector('table.schedules-table [role=switch]').getAttribute('aria-checked') === 'true');
    await shot('08-schedules');
    // the scheduled runs arrive: the test list shows them as red cells, uptime 0 %
    await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Tests' }).click();
    await heading('Tests');
    const end = Date.now() + 90000;
    let cells = 0;
    while (Date.now() < end) {
      cells = await page.locator('.tests-table .recent a.c-failed').count();
      if (cells >= 3) break;
      await page.waitForTimeout(2000);
      await page.reload();
      await heading('Tests');
    }
    check(cells >= 3, `three or more failed runs in the recent results row, saw ${cells}`);
    const tr = page.locator('.tests-table tbody tr').first();
    await textMatches(tr, /Failed[\s\S]*Checkout status[\s\S]*0 %/, 'last status and uptime in the list');
    await visible(page.locator('.tests-table .tag', { hasText: 'smoke' }), 'the tags');
    await textMatches(page.locator('.project-summary'), /Last 24 h: \d+ runs · 0 % passed · p95 \d/, 'the project summary');
    // filters
    await page.getByLabel('Search').fill('nothing like this');
    await visible(page.getByText('No test matches these filters'), 'the empty filter result');
    await page.getByLabel('Search').fill('checkout');
    await page.getByLabel('Last status').selectOption('failed');
    await visible(page.locator('.tests-table tbody tr'), 'the filtered list');
    check(page.url().includes('status=failed'), 'the filter is kept in the address');
    await shot('09-tests-list');
  }],

  ['see the charts', async () => {
    await page.getByRole('link', { name: 'Checkout status' }).first().click();
    await heading('Checkout status');
    // the schedule runs every 5 s: wait until the runs fill three 15-second buckets, so the
    // lines have something to join
    const range = page.getByRole('group', { name: 'Time range' }).getByRole('button', { name: '15 min' });
    const end = Date.now() + 90000;
    let buckets = 0;
    while (Date.now() < end) {
      await range.click();
      await visible(page.locator('[data-chart=pass-rate] svg.chart'), 'the pass-rate chart');
      buckets = await page.locator('[data-chart=pass-rate] circle.dot-fail').count();
      if (buckets >= 3) break;
      await page.waitForTimeout(3000);
    }
    check(buckets >= 3, `three 15-second buckets with failed runs in the pass-rate chart, saw ${buckets}`);
    const latency = page.locator('[data-chart=latency] svg.chart');
    await visible(latency, 'the response-time chart');
    check(/L/.test(await page.locator('[data-chart=latency] path.series-1').getAttribute('d') || ''), 'the p50 line joins the buckets');
    check(/Response time, p50 and p95/.test(await latency.getAttribute('aria-label')), 'the chart has a text alternative');
    check(await page.locator('[data-chart=latency] path.series-1').count() + await page.locator('[data-chart=latency] circle.dot-1').count() > 0, 'the p50 line is drawn');
    check(await page.locator('[data-chart=latency] path.series-2').count() + await page.locator('[data-chart=latency] circle.dot-2').count() > 0, 'the p95 line is drawn');
    const rate = page.locator('[data-chart=pass-rate] svg.chart');
    const label = await rate.getAttribute('aria-label');
    check(/Pass rate, last 15 min: 0 % of \d+ runs passed/.test(label), `the pass-rate chart's text: ${label}`);
    await textMatches(page.locator('#charts-title').locator('xpath=../..'), /\d+ runs in the last 15 min · 0 % passed/, 'the chart summary');
    // keyboard: arrow keys read the values out
    await latency.focus();
    await page.keyboard.press('End');
    await textMatches(page.locator('[data-chart=latency] .chart-tip'), /p50 \d/, 'the chart reads a point out on End');
    await visible(page.locator('section', { has: page.getByRole('heading', { name: 'Recent runs' }) }).locator('tbody tr'), 'the recent runs');
    await shot('10-test-charts');
  }],

  ['browse the runs', async () => {
    await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Runs' }).click();
    await heading('Runs');
    const rows = page.locator('table tbody tr');
    await visible(rows, 'the runs');
    check(await rows.count() >= 4, `the manual run and the scheduled ones, saw ${await rows.count()} rows`);
    await textMatches(rows.first(), /Failed[\s\S]*Checkout status[\s\S]*schedule/, 'the newest run first');
    await page.getByLabel('Status', { exact: true }).selectOption('passed');
    await visible(page.getByText('No runs match'), 'no passed runs');
    check(page.url().includes('status=failed') === false && page.url().includes('status=passed'), 'the filter is kept in the address');
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await visible(rows, 'the failed runs');
    await shot('11-runs');
    await rows.first().getByRole('link', { name: /open the run/ }).click();
    await heading('Run of Checkout status');
    await textMatches(page.locator('.run-summary').first(), /schedule/, 'a scheduled run');
  }],

  ['settings: environments, members, API keys, channels', async () => {
    await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Settings' }).click();
    await heading('Settings: General');
    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Environments' }).click();
    await heading('Settings: Environments');
    await page.getByRole('button', { name: 'New environment' }).click();
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'New environment' }) });
    await form.getByLabel('Name', { exact: true }).fill('staging');
    await form.getByLabel('Variable name').first().fill('base_url');
    await form.getByLabel('Value').first().fill(TARGET);
    await form.getByRole('button', { name: 'Add a variable' }).click();
    await form.getByLabel('Variable name').nth(1).fill('token');
    await form.getByLabel('Secret').nth(1).check();
    await form.getByLabel('Value').nth(1).fill('s3cret-value-never-shown');
    check(await form.getByLabel('Value').nth(1).getAttribute('type') === 'password', 'a secret is typed into a password field');
    await allControlsLabelled('environment form');
    await form.getByRole('button', { name: 'Create environment' }).click();
    const env = page.getByRole('region', { name: 'Environment staging' });
    await textMatches(env, /base_url[\s\S]*token[\s\S]*•••• set/, 'the secret shows as set');
    check(!(await page.content()).includes('s3cret-value-never-shown'), 'the secret value is nowhere in the page');
    await env.getByRole('button', { name: 'Edit' }).click();
    const edit = page.locator('form', { has: page.getByRole('heading', { name: 'Edit “staging”' }) });
    await visible(edit.getByText('•••• set'), 'the stored secret, write-only, in the edit form');
    await edit.getByRole('button', { name: 'Save environment' }).click();
    await textMatches(env, /token[\s\S]*•••• set/, 'saving without retyping keeps the secret');
    await shot('12-settings-environments');

    // a second user, then a member
    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Members' }).click();
    await heading('Settings: Members');
    await page.goto(`${URL0}/app/admin/users`);
    await heading('Users');
    const uf = page.locator('form', { has: page.getByRole('heading', { name: 'New user' }) });
    await uf.getByLabel('E-mail').fill('viewer@example.com');
    await uf.getByLabel('Name', { exact: true }).fill('Vera Viewer');
    await uf.getByLabel('Initial password').fill('viewer-password-1');
    await uf.getByRole('button', { name: 'Create user' }).click();
    await visible(page.getByRole('cell', { name: 'viewer@example.com' }), 'the new user in the list');
    await page.goto(`${URL0}/app/projects/${S.project}/settings/members`);
    await heading('Settings: Members');
    const mf = page.locator('form', { has: page.getByRole('heading', { name: 'Add a member' }) });
    await mf.getByLabel('E-mail of an existing user').fill('nobody@example.com');
    await mf.getByRole('button', { name: 'Add member' }).click();
    await visible(mf.getByRole('alert'), 'an unknown user is refused with the API\'s message');
    await mf.getByLabel('E-mail of an existing user').fill('viewer@example.com');
    await mf.getByRole('button', { name: 'Add member' }).click();
    await visible(page.getByRole('cell', { name: 'viewer@example.com' }), 'the new member');
    await textMatches(page.getByLabel('Role of viewer@example.com'), /viewer/, 'the member\'s role');
    await shot('13-settings-members');

    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'API keys' }).click();
    await heading('Settings: API keys');
    const kf = page.locator('form', { has: page.getByRole('heading', { name: 'New API key' }) });
    await kf.getByLabel('Name', { exact: true }).fill('GitHub Actions');
    await kf.getByRole('button', { name: 'Create key' }).click();
    const token = await textMatches(page.locator('code.token'), /^rpk_[A-Za-z0-9]+_\S+$/, 'the token, shown once');
    await visible(page.getByRole('button', { name: 'Copy token' }), 'the copy button');
    await visible(page.getByRole('cell', { name: 'GitHub Actions' }), 'the key in the list');
    await shot('14-settings-api-keys');
    await page.reload();
    await heading('Settings: API keys');
    await visible(page.getByRole('cell', { name: 'GitHub Actions' }), 'the key after a reload');
    check(!(await page.content()).includes(token.trim()), 'the token is not shown again');

    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Channels and alerts' }).click();
    await heading('Settings: Channels and alerts');
    await page.getByRole('button', { name: 'New channel' }).click();
    const cf = page.locator('form', { has: page.getByRole('heading', { name: 'New channel' }) });
    await cf.getByLabel('Name', { exact: true }).fill('On-call webhook');
    await cf.getByLabel('Kind').selectOption('webhook');
    await cf.getByLabel('URL').fill('https://hooks.example.com/rampart');
    await cf.getByLabel('HMAC signing secret (optional)').fill('hmac-secret-never-shown');
    await cf.getByRole('button', { name: 'Create channel' }).click();
    await visible(page.getByRole('cell', { name: 'On-call webhook' }), 'the channel in the list');
    await visible(page.getByText('hmac_secret •••• set'), 'its secret, write-only');
    check(!(await page.content()).includes('hmac-secret-never-shown'), 'the channel secret is nowhere in the page');
    await page.getByRole('button', { name: 'New rule' }).click();
    const rf = page.locator('form', { has: page.getByRole('heading', { name: 'New alert rule' }) });
    await rf.getByLabel('Name', { exact: true }).fill('Checkout down');
    await rf.getByLabel('On-call webhook (webhook)').check();
    await rf.getByRole('button', { name: 'Create rule' }).click();
    await visible(page.getByRole('cell', { name: 'Checkout down' }), 'the alert rule in the list');
    await shot('15-settings-channels');
  }],

  ['alerts: an open incident and a failed delivery, then a test notification', async () => {
    // two failed scheduled runs at a location of their own, finished as the worker does: the
    // rule "Checkout down" (2 failures open) opens an incident; the webhook channel's delivery
    // of it failed, as the connector would record it
    const failure = 'status: expected 200, got 503';
    const runs = [];
    for (const ago of [120, 60]) {
      const [[id]] = sql("INSERT INTO runs (id, project_id, test_id, test_version, fire_time, trigger, location, status) "
        + "VALUES (gen_random_uuid(), %s, %s, 1, now() - %s * interval '1 second', 'schedule', 'eu-west', 'running') RETURNING id",
      [S.project, S.test, ago]);
      sql('SELECT * FROM finish_runs(ARRAY[%s]::uuid[], ARRAY[\'failed\'], ARRAY[now()], ARRAY[NULL]::text[], ARRAY[12.5]::float8[], ARRAY[%s])', [id, failure]);
      runs.push(id);
    }
    const opened = sql("SELECT x.id, i.id FROM incident_transitions x JOIN incidents i ON i.id = x.incident_id "
      + "WHERE i.project_id = %s AND i.location = 'eu-west' AND x.kind = 'opened'", [S.project]);
    check(opened.length === 1, `the second failure opens one incident, found ${opened.length}`);
    const [[channel]] = sql("SELECT id FROM channels WHERE project_id = %s AND name = 'On-call webhook'", [S.project]);
    const reason = 'gave up after 5 tries: HTTP 500 from hooks.example.com';
    sql("INSERT INTO notifications (project_id, transition_id, channel_id, status, attempts, reason, response) "
      + "VALUES (%s, %s, %s, 'failed', 5, %s, 'HTTP/1.1 500 Internal Server Error')", [S.project, opened[0][0], channel, reason]);

    await page.goto(`${URL0}/app/projects/${S.project}/tests`);
    await heading('Tests');
    await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Alerts' }).click();
    await heading('Alerts');
    const openInc = page.getByRole('region', { name: 'Open incidents' });
    const row = openInc.locator('tbody tr', { hasText: 'eu-west' });
    await textMatches(row, /Open[\s\S]*Checkout status[\s\S]*eu-west[\s\S]*Checkout down[\s\S]*status: expected 200, got 503[\s\S]*1 failed/,
      'the open incident: test, location, rule, failure, its failed delivery');
    const runLink = row.getByRole('link', { name: 'Run that opened it' });
    check((await runLink.getAttribute('href')).endsWith(`/runs/${runs[1]}`), 'the incident links to the run that opened it');
    await visible(page.getByRole('region', { name: 'Resolved incidents' }).getByText('No resolved incidents yet'), 'no resolved incident yet');
    const ledger = page.getByRole('region', { name: 'Deliveries' });
    const failed = ledger.locator('tbody tr', { hasText: 'On-call webhook' });
    await textMatches(failed, /✗\s*Failed[\s\S]*On-call webhook \(webhook\)[\s\S]*Incident opened: Checkout status \(eu-west\)[\s\S]*5[\s\S]*gave up after 5 tries: HTTP 500 from hooks\.example\.com[\s\S]*500 Internal Server Error/,
      'the failed delivery: badge, channel, what, attempts and why');
    await page.getByLabel('Delivery status').selectOption('sent');
    await visible(ledger.getByText('No delivery with this status'), 'no sent delivery');
    check(page.url().includes('status=sent'), 'the ledger filter is kept in the address');
    await page.getByLabel('Delivery status').selectOption('failed');
    await visible(failed, 'the failed delivery, filtered');
    await allControlsLabelled('alerts');
    await shot('20-alerts');
    await page.setViewportSize({ width: 375, height: 800 });
    await page.reload();
    await heading('Alerts');
    await visible(ledger.getByText('gave up after 5 tries'), 'the reason on a phone');
    await noHorizontalScroll('the alerts page at 375 px');
    const tab = await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Settings' }).boundingBox();
    check(tab && tab.x + tab.width <= 375, `the five project tabs fit 375 px (Settings ends at ${tab && tab.x + tab.width} px)`);
    await shot('21-mobile-alerts');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.reload();
    await heading('Alerts');
    await visible(failed, 'the failed delivery in dark mode');
    await shot('22-dark-alerts');
    await page.emulateMedia({ colorScheme: 'light' });

    // "Send test" on the channel: the dashboard records a test transition and waits for its
    // ledger row; here the connector's part (the ledger row) is played with SQL
    await page.goto(`${URL0}/app/projects/${S.project}/settings/channels`);
    await heading('Settings: Channels and alerts');
    const chRow = page.getByRole('region', { name: 'Channels', exact: true }).locator('tbody tr', { hasText: 'On-call webhook' });
    const out = chRow.locator('.test-outcome');
    check(await out.getAttribute('aria-live') === 'polite', 'the test outcome is an aria-live region');
    await chRow.getByRole('button', { name: 'Send test' }).click();
    await textMatches(out, /Sending a test notification/, 'the button says it is sending');
    let transition = [];
    for (let i = 0; i < 50 && !transition.length; i += 1) {
      transition = sql("SELECT id FROM incident_transitions WHERE channel_id = %s AND kind = 'test'", [channel]);
      if (!transition.length) await page.waitForTimeout(100);
    }
    check(transition.length === 1, 'one test transition recorded');
    sql("INSERT INTO notifications (project_id, transition_id, channel_id, status, attempts, reason, response) "
      + "VALUES (%s, %s, %s, 'failed', 1, 'HTTP 404 from hooks.example.com', 'HTTP/1.1 404 Not Found')", [S.project, transition[0][0], channel]);
    await textMatches(out, /^Failed: HTTP 404 from hooks\.example\.com$/, 'the outcome and its reason, read out in the row', 9000);
    await shot('23-channel-test');
  }],

  ['small screen (375 px) and keyboard', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${URL0}/app/projects/${S.project}/tests`);
    await heading('Tests');
    await noHorizontalScroll('tests at 375 px');
    await visible(page.locator('.tests-table .recent'), 'the recent results on a phone');
    await shot('16-mobile-tests');
    await page.goto(`${URL0}/app/projects/${S.project}/tests/${S.test}`);
    await heading('Checkout status');
    await noHorizontalScroll('the test page at 375 px');
    await shot('17-mobile-test');
    for (const [where, url, title] of [
      ['the schedules', `/app/projects/${S.project}/schedules`, 'Schedules'],
      ['the runs', `/app/projects/${S.project}/runs`, 'Runs'],
      ['the environments', `/app/projects/${S.project}/settings/environments`, 'Settings: Environments'],
      ['the channels', `/app/projects/${S.project}/settings/channels`, 'Settings: Channels and alerts'],
    ]) {
      await page.goto(URL0 + url);
      await heading(title);
      await noHorizontalScroll(`${where} at 375 px`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    // keyboard: the first Tab reaches the skip link, which moves focus to the content
    await page.goto(`${URL0}/app/projects/${S.project}/tests`);
    await heading('Tests');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.textContent) === 'Skip to content', 'the first Tab lands on the skip link');
    await page.keyboard.press('/');
    check(await page.evaluate(() => document.activeElement.getAttribute('name')) === 'q', '"/" focuses the filter box');
  }],

  ['log out', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading('Log in to Rampart');
    await page.goto(`${URL0}/app/projects/${S.project}/tests`);
    await heading('Log in to Rampart');
    check(page.url().includes('next='), 'a protected page sends to the login page, remembering where to go');
    await page.getByLabel('E-mail').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await heading('Tests');
    check(page.url().includes(`/app/projects/${S.project}/tests`), 'after login, back to the page asked for');
  }],

  ['a viewer reads but cannot change', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading('Log in to Rampart');
    await page.getByLabel('E-mail').fill('viewer@example.com');
    await page.getByLabel('Password').fill('viewer-password-1');
    await page.getByRole('button', { name: 'Log in' }).click();
    await heading('Projects');
    await textMatches(page.locator('tbody tr', { hasText: 'Checkout API' }), /viewer/, 'the viewer\'s role in the list');
    await page.getByRole('link', { name: 'Checkout API' }).click();
    await heading('Tests');
    check(await page.getByRole('link', { name: 'New test' }).count() === 0, 'no "New test" for a viewer');
    await page.getByRole('link', { name: 'Checkout status' }).click();
    await heading('Checkout status');
    check(await page.getByRole('button', { name: 'Run now' }).isDisabled(), '"Run now" is disabled for a viewer');
    await visible(page.getByText('Viewers cannot start runs.'), 'the reason');
    check(await page.getByRole('button', { name: 'Save' }).isDisabled(), '"Save" is disabled for a viewer');
    check(await page.getByLabel('Definition (JSON)').getAttribute('readonly') !== null, 'the editor is read-only');
    check(await page.getByRole('button', { name: 'Delete' }).count() === 0, 'no "Delete" for a viewer');
    await page.goto(`${URL0}/app/admin/users`);
    await heading('Users');
    await visible(page.getByText('Only administrators manage users.'), 'the admin page refuses a non-admin');
    await page.goto(`${URL0}/app/projects/00000000-0000-0000-0000-000000000000/tests`);
    await heading('Not found');
    await visible(page.getByRole('alert'), 'an unknown project shows the API\'s error');
    await shot('19-not-found');
  }],
];

// ---- runner -----------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
context.setDefaultTimeout(T);
page = await context.newPage();
page.on('pageerror', (e) => pageErrors.push(`JavaScript error: ${e.message}`));
page.on('console', (m) => {
  const t = m.text();
  if (/Content Security Policy|Refused to/i.test(t)) pageErrors.push(`CSP violation: ${t}`);
  else if (m.type() === 'error' && !/status of 4\d\d/.test(t)) pageErrors.push(`console error: ${t}`);
});

let passed = 0;
let failed = 0;
let broken = false;
for (const [name, fn] of journeys) {
  const started = Date.now();
  if (broken) {
    console.log(`SKIP ${name} (an earlier journey failed)`);
    failed += 1;
    continue;
  }
  const before = pageErrors.length;
  try {
    await fn();
    check(pageErrors.length === before, pageErrors.slice(before).join('; '));
    passed += 1;
    console.log(`PASS ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    failed += 1;
    broken = true;
    const safe = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    try { await shot(`FAILED-${safe}`); } catch { /* the page may be gone */ }
    console.log(`FAIL ${name}: ${err instanceof Failure ? err.message : err.stack}`);
    console.log(`     at ${page.url()}`);
  }
}
// a dark-mode look at the test page, for the record
if (!broken) {
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${URL0}/app/projects/${S.project}/tests/${S.test}`);
  await heading('Checkout status');
  await page.locator('[data-chart=latency] svg.chart').waitFor();
  await shot('18-dark-test');
}
await browser.close();
console.log(`screenshots: ${shots.join(' ')}`);
console.log(`journeys: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
