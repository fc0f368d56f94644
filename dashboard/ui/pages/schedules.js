// A project's schedules: which test runs how often (an interval or a cron expression in a time
// zone), where, the next fire time and the scheduler's last error; switch one on or off,
// delete one, or create one.
import { del, get, patch, post, pp } from '/ui/api.js';
import {
  announce, clearFormErrors, confirmDialog, emptyState, errorBox, field, fmtInterval, h, pageHeader, showFormError, timeEl, uid,
} from '/ui/dom.js';

const UNITS = [['60', 'minutes'], ['1', 'seconds'], ['3600', 'hours'], ['86400', 'days']];

function createForm(ctx, tests, envs, onCreated) {
  const p = ctx.project;
  const test = h('select', { name: 'test_id', required: true },
    tests.map((t) => h('option', { value: t.id, selected: t.id === ctx.query.get('test') }, t.name)));
  const env = h('select', { name: 'environment_id' }, h('option', { value: '' }, 'No environment'), envs.map((e) => h('option', { value: e.id }, e.name)));
  const modeInterval = h('input', { type: 'radio', name: 'mode', value: 'interval', checked: true });
  const modeCron = h('input', { type: 'radio', name: 'mode', value: 'cron' });
  const every = h('input', { type: 'number', name: 'interval_s', min: '1', value: '5', required: true, inputmode: 'numeric' });
  const unit = h('select', { name: 'unit', 'aria-label': 'Unit' }, UNITS.map(([v, l]) => h('option', { value: v }, l)));
  const cron = h('input', { type: 'text', name: 'cron', placeholder: '*/5 * * * *', autocomplete: 'off' });
  let tzGuess = 'UTC';
  try { tzGuess = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { /* keep UTC */ }
  const tz = h('input', { type: 'text', name: 'timezone', value: tzGuess, autocomplete: 'off' });
  const locations = h('input', { type: 'text', name: 'locations', value: localStorage.getItem(`rampart.location.${p.id}`) || 'default', autocomplete: 'off' });
  const retries = h('input', { type: 'number', name: 'retries', min: '0', max: '5', value: '0', inputmode: 'numeric' });
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: true, id: uid('enabled') });
  const intervalBox = h('div', { class: 'inline-form' }, field('Every', every), field('Unit', unit));
  const cronBox = h('div', { class: 'form-grid cols-2', hidden: true },
    field('Cron expression', cron, 'Five fields: minute hour day-of-month month day-of-week.'), field('Time zone', tz, 'An IANA name, e.g. Europe/Berlin.'));
  const sync = () => {
    intervalBox.hidden = !modeInterval.checked;
    cronBox.hidden = !modeCron.checked;
  };
  modeInterval.addEventListener('change', sync);
  modeCron.addEventListener('change', sync);
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create schedule');
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-schedule-title', novalidate: true },
    h('h2', { id: 'new-schedule-title' }, 'New schedule'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'form-grid cols-2' }, field('Test', test), field('Environment', env)),
    h('fieldset', { class: 'span-all' }, h('legend', {}, 'When'),
      h('div', { class: 'radio-row' }, h('label', {}, modeInterval, 'At a fixed interval'), h('label', {}, modeCron, 'On a cron schedule')),
      intervalBox, cronBox),
    h('div', { class: 'form-grid cols-3' },
      field('Locations', locations, 'Comma-separated; one run per location.'),
      field('Retries', retries, 'Runs again at once after a failure (0–5).'),
      h('div', { class: 'field field-inline' }, enabled, h('label', { for: enabled.id }, 'Enabled'))),
    h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    const body = {
      test_id: test.value,
      locations: locations.value.split(',').map((s) => s.trim()).filter(Boolean),
      retries: Number(retries.value || 0),
      enabled: enabled.checked,
    };
    if (env.value) body.environment_id = env.value;
    if (modeInterval.checked) {
      const n = Number(every.value);
      if (!Number.isFinite(n) || n <= 0) return showFormError(form, { message: 'Enter a positive number.', field: 'interval_s' });
      body.interval_s = Math.round(n * Number(unit.value));
    } else {
      if (!cron.value.trim()) return showFormError(form, { message: 'Enter a cron expression.', field: 'cron' });
      body.cron = cron.value.trim();
      body.timezone = tz.value.trim() || 'UTC';
    }
    submit.disabled = true;
    try {
      await post(pp(p.id, 'schedules'), body);
      if (body.locations.length === 1) localStorage.setItem(`rampart.location.${p.id}`, body.locations[0]);
      announce('Schedule created');
      onCreated();
    } catch (err) {
      showFormError(form, err, 'Could not create the schedule');
    } finally {
      submit.disabled = false;
    }
    return undefined;
  });
  return form;
}

function toggle(ctx, s, onError) {
  const txt = h('span', { 'aria-hidden': 'true' }, s.enabled ? 'On' : 'Off');
  const b = h('button', { type: 'button', role: 'switch', class: 'switch', 'aria-checked': s.enabled ? 'true' : 'false', 'aria-label': `Enabled: ${s.test_name || 'schedule'}`, disabled: !ctx.canEdit() });
  b.addEventListener('click', async () => {
    const want = b.getAttribute('aria-checked') !== 'true';
    b.disabled = true;
    try {
      await patch(pp(ctx.project.id, 'schedules', s.id), { enabled: want });
      b.setAttribute('aria-checked', want ? 'true' : 'false');
      txt.textContent = want ? 'On' : 'Off';
      s.enabled = want;
      announce(want ? 'Schedule enabled' : 'Schedule paused');
    } catch (err) {
      onError(err);
    } finally {
      b.disabled = !ctx.canEdit();
    }
  });
  return h('span', { class: 'switch-wrap' }, b, txt);
}

export async function render(ctx) {
  const p = ctx.project;
  ctx.setTitle(`Schedules · ${p.name}`);
  const listCard = h('div', { class: 'card' });
  const msg = h('div');
  const formSlot = h('div');
  ctx.main.append(pageHeader('Schedules'), msg, listCard, formSlot);

  async function load() {
    let data;
    try {
      data = await get(pp(p.id, 'schedules'), { signal: ctx.signal });
    } catch (err) {
      if (err.name !== 'AbortError') listCard.replaceChildren(errorBox(err, 'Could not load the schedules'));
      return;
    }
    const items = data.items || [];
    if (!items.length) {
      listCard.replaceChildren(emptyState('No schedules yet', 'A schedule runs a test at a fixed interval or on a cron expression, from one or more locations.'));
      return;
    }
    const onError = (err) => msg.replaceChildren(errorBox(err, 'Could not change the schedule'));
    listCard.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'responsive schedules-table' },
      h('caption', { class: 'visually-hidden' }, 'Schedules'),
      h('thead', {}, h('tr', {}, ['Test', 'When', 'Locations', 'Next run', 'Enabled', 'Problem', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((s) => {
        const delBtn = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Delete the schedule of ${s.test_name || 'this test'}` }, 'Delete') : null;
        if (delBtn) {
          delBtn.addEventListener('click', async () => {
            if (!await confirmDialog('Delete this schedule?', `“${s.test_name || 'The test'}” stops running on it. Past runs are kept.`)) return;
            try {
              await del(pp(p.id, 'schedules', s.id));
              announce('Schedule deleted');
              load();
            } catch (err) {
              onError(err);
            }
          });
        }
        return h('tr', { dataset: { scheduleId: s.id } },
          h('td', { 'data-label': 'Test' }, h('a', { href: `/app/projects/${p.id}/tests/${s.test_id}`, class: 'row-title' }, s.test_name || s.test_id)),
          h('td', { 'data-label': 'When' }, s.interval_s ? fmtInterval(s.interval_s) : h('span', {}, h('code', {}, s.cron), ` (${s.timezone || 'UTC'})`)),
          h('td', { 'data-label': 'Locations' }, (s.locations || []).join(', ')),
          h('td', { 'data-label': 'Next run' }, s.enabled ? timeEl(s.next_run_at) : h('span', { class: 'muted' }, 'paused')),
          h('td', { 'data-label': 'Enabled' }, toggle(ctx, s, onError)),
          h('td', { 'data-label': 'Problem' }, s.last_error ? h('span', { class: 'check-fail' }, s.last_error) : h('span', { class: 'muted' }, 'none')),
          h('td', {}, delBtn));
      })))));
  }

  await load();
  if (!ctx.canEdit()) return;
  try {
    const [tests, envs] = await Promise.all([get(pp(p.id, 'tests'), { signal: ctx.signal }), get(pp(p.id, 'environments'), { signal: ctx.signal }).catch(() => ({ items: [] }))]);
    if (!(tests.items || []).length) {
      formSlot.append(h('p', { class: 'muted' }, 'Create a test first, then schedule it here.'));
      return;
    }
    formSlot.append(createForm(ctx, tests.items, envs.items || [], () => load()));
  } catch (err) {
    if (err.name !== 'AbortError') formSlot.append(errorBox(err, 'Could not load the tests'));
  }
}
