// Settings › Channels and alerts: where alerts go (e-mail, webhooks, chat, PagerDuty,
// Opsgenie, a status page) and the rules that send them. Each kind has its own few fields
// (config and write-only secrets, as dashboard/api_alerts.c checks them); a stored secret
// shows "•••• set" and is kept unless a new value is typed. **Send test** sends a test
// notification through a channel and waits up to 10 s for its outcome, read out in the row.
import { del, get, patch, post, pp } from '/ui/api.js';
import { announce, clearFormErrors, confirmDialog, emptyState, errorBox, field, h, showFormError, uid } from '/ui/dom.js';

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

// name, label, and the fields: [key, label, where ('config'|'secrets'), type, options/hint]
const KINDS = {
  email: { label: 'E-mail', fields: [['to', 'To (comma-separated)', 'config', 'list', 'ops@example.com'], ['cc', 'Cc (comma-separated)', 'config', 'list', '']] },
  webhook: {
    label: 'Webhook',
    fields: [['url', 'URL', 'config', 'text', 'https://hooks.example.com/rampart'], ['method', 'Method', 'config', 'select', ['POST', 'PUT']],
      ['hmac_secret', 'HMAC signing secret (optional)', 'secrets', 'secret', '']],
  },
  slack: { label: 'Slack', fields: [['webhook_url', 'Incoming webhook URL', 'secrets', 'secret', 'https://hooks.slack.com/services/…']] },
  mattermost: { label: 'Mattermost', fields: [['webhook_url', 'Incoming webhook URL', 'secrets', 'secret', '']] },
  teams: { label: 'Microsoft Teams', fields: [['webhook_url', 'Incoming webhook URL', 'secrets', 'secret', '']] },
  discord: { label: 'Discord', fields: [['webhook_url', 'Webhook URL', 'secrets', 'secret', '']] },
  pagerduty: {
    label: 'PagerDuty',
    fields: [['routing_key', 'Routing (integration) key', 'secrets', 'secret', ''], ['severity', 'Severity', 'config', 'select', ['', 'critical', 'error', 'warning', 'info']]],
  },
  opsgenie: {
    label: 'Opsgenie',
    fields: [['api_key', 'API key', 'secrets', 'secret', ''], ['region', 'Region', 'config', 'select', ['', 'us', 'eu']],
      ['priority', 'Priority', 'config', 'select', ['', 'P1', 'P2', 'P3', 'P4', 'P5']]],
  },
  statuspage: {
    label: 'Status page (custom calls)',
    fields: [['config', 'Config (JSON: {"open": {method, url, body_template}, "resolve": {...}})', 'config', 'json', ''],
      ['headers', 'Secret headers (JSON object, optional)', 'secrets', 'json-secret', '']],
  },
};

function channelForm(ctx, ch, onDone) {
  const p = ctx.project;
  const name = h('input', { type: 'text', name: 'name', value: ch ? ch.name : '', required: true, maxlength: '100' });
  const kind = h('select', { name: 'kind', disabled: !!ch }, Object.entries(KINDS).map(([k, v]) => h('option', { value: k, selected: ch && ch.kind === k }, v.label)));
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: ch ? ch.enabled : true, id: uid('en') });
  const fieldsBox = h('div', { class: 'form-grid cols-2' });
  let inputs = [];
  function drawFields() {
    const spec = KINDS[kind.value];
    inputs = [];
    fieldsBox.replaceChildren();
    for (const [key, label, where, type, extra] of spec.fields) {
      let input;
      const stored = ch && ch.kind === kind.value ? (where === 'config' ? (type === 'json' ? ch.config : (ch.config || {})[key]) : (ch.secrets || {})[key]) : undefined;
      const isSet = where === 'secrets' && stored !== undefined && stored !== null;
      const inputName = `${where}.${key}`;
      if (type === 'select') {
        input = h('select', { name: inputName }, extra.map((o) => h('option', { value: o, selected: stored === o }, o || '(default)')));
      } else if (type === 'json' || type === 'json-secret') {
        input = h('textarea', { name: inputName, class: 'code', rows: '5', placeholder: isSet ? '•••• set: leave empty to keep' : '' },
          type === 'json' && stored ? JSON.stringify(stored, null, 2) : '');
      } else {
        input = h('input', {
          type: type === 'secret' ? 'password' : 'text', name: inputName, autocomplete: 'off',
          placeholder: isSet ? '•••• set: leave empty to keep' : extra || '',
          value: type === 'list' ? (stored || []).join(', ') : type === 'text' ? stored || '' : '',
        });
      }
      inputs.push({ key, where, type, input, isSet });
      fieldsBox.append(field(label, input, isSet ? 'A value is stored; type a new one to replace it.' : null, type === 'json' || type === 'json-secret' ? 'span-all' : null));
    }
  }
  kind.addEventListener('change', drawFields);
  drawFields();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, ch ? 'Save channel' : 'Create channel');
  const titleId = uid('ch-title');
  const form = h('form', { class: 'card', 'aria-labelledby': titleId, novalidate: true },
    h('h2', { id: titleId }, ch ? `Edit “${ch.name}”` : 'New channel'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'form-grid cols-2' }, field('Name', name), field('Kind', kind)),
    fieldsBox,
    h('div', { class: 'field field-inline' }, enabled, h('label', { for: enabled.id }, 'Enabled')),
    h('div', { class: 'form-actions' }, submit, h('button', { type: 'button', class: 'btn', onclick: () => onDone(false) }, 'Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    let config = {};
    const secrets = {};
    try {
      for (const f of inputs) {
        const v = f.input.value.trim();
        if (f.type === 'json') {
          config = v ? JSON.parse(v) : {};
        } else if (f.type === 'json-secret') {
          if (v) secrets[f.key] = JSON.parse(v);
        } else if (f.where === 'secrets') {
          if (v) secrets[f.key] = v;
        } else if (f.type === 'list') {
          if (v) config[f.key] = list(v);
        } else if (v) {
          config[f.key] = v;
        }
      }
    } catch (err) {
      showFormError(form, { message: `Not valid JSON: ${err.message}` });
      return;
    }
    const body = { name: name.value.trim(), config, enabled: enabled.checked };
    if (Object.keys(secrets).length || !ch) body.secrets = secrets;
    if (!ch) body.kind = kind.value;
    submit.disabled = true;
    try {
      if (ch) await patch(pp(p.id, 'channels', ch.id), body);
      else await post(pp(p.id, 'channels'), body);
      announce(ch ? 'Channel saved' : 'Channel created');
      onDone(true);
    } catch (err) {
      showFormError(form, err, 'Could not save the channel');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function ruleForm(ctx, channelsList, onDone) {
  const p = ctx.project;
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '100', placeholder: 'e.g. Production down' });
  const tags = h('input', { type: 'text', name: 'tags', placeholder: 'all tests', autocomplete: 'off' });
  const open = h('input', { type: 'number', name: 'failures_to_open', min: '1', max: '100', value: '2' });
  const resolve = h('input', { type: 'number', name: 'passes_to_resolve', min: '1', max: '100', value: '1' });
  const boxes = channelsList.map((c) => {
    const cb = h('input', { type: 'checkbox', value: c.id, id: uid('rc') });
    return { cb, el: h('label', { for: cb.id, class: 'field-inline' }, cb, ` ${c.name} (${c.kind})`) };
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create rule');
  const form = h('form', { class: 'card', 'aria-labelledby': 'rule-title', novalidate: true },
    h('h2', { id: 'rule-title' }, 'New alert rule'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'form-grid cols-2' }, field('Name', name), field('Only tests tagged (comma-separated)', tags),
      field('Failures in a row to open an incident', open), field('Passes in a row to resolve it', resolve)),
    h('fieldset', {}, h('legend', {}, 'Send to'), boxes.length ? boxes.map((b) => b.el) : h('p', { class: 'muted' }, 'Create a channel first.'),
      h('input', { type: 'hidden', name: 'channel_ids' })),
    h('div', { class: 'form-actions' }, submit, h('button', { type: 'button', class: 'btn', onclick: () => onDone(false) }, 'Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      await post(pp(p.id, 'alert-rules'), {
        name: name.value.trim(),
        tags: list(tags.value),
        failures_to_open: Number(open.value || 2),
        passes_to_resolve: Number(resolve.value || 1),
        channel_ids: boxes.filter((b) => b.cb.checked).map((b) => b.cb.value),
      });
      announce('Alert rule created');
      onDone(true);
    } catch (err) {
      showFormError(form, err, 'Could not create the rule');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function channels(ctx, root) {
  const p = ctx.project;
  const msg = h('div');
  const formSlot = h('div');
  const chList = h('section', { class: 'card', 'aria-labelledby': 'channels-title' });
  const ruleSlot = h('div');
  const ruleList = h('section', { class: 'card', 'aria-labelledby': 'rules-title' });
  root.append(msg, formSlot, chList, ruleSlot, ruleList);
  let channelItems = [];

  const toggle = (ch) => {
    const b = h('button', { type: 'button', role: 'switch', class: 'switch', 'aria-checked': ch.enabled ? 'true' : 'false', 'aria-label': `Enabled: ${ch.name}`, disabled: !ctx.canEdit() });
    b.addEventListener('click', async () => {
      const want = b.getAttribute('aria-checked') !== 'true';
      try {
        await patch(pp(p.id, 'channels', ch.id), { enabled: want });
        b.setAttribute('aria-checked', want ? 'true' : 'false');
        announce(want ? 'Channel enabled' : 'Channel disabled');
      } catch (err) {
        msg.replaceChildren(errorBox(err, 'Could not change the channel'));
      }
    });
    return b;
  };

  // POST .../channels/{channel}/test?wait=10: the outcome (sent, failed and why, muted) or,
  // when no sender answered within the wait, what is known; written in the row's live region
  async function sendTest(ch, btn, out) {
    const say = (text, cls) => {
      out.className = ['test-outcome', cls].filter(Boolean).join(' ');
      out.textContent = text;
    };
    btn.disabled = true;
    say(`Sending a test notification to ${ch.name}…`);
    try {
      const r = await post(`${pp(p.id, 'channels', ch.id, 'test')}?wait=10`, {});
      const n = r.notification;
      const sender = ch.kind === 'email' ? 'rampart-mailer' : 'rampart-connector';
      if (!n) say(`Not delivered yet: no sender took it within 10 s (is ${sender} running?). See Alerts › Deliveries.`, 'outcome-bad');
      else if (n.status === 'sent') say(`Sent${n.response ? ` (${n.response})` : ''}.`, 'outcome-ok');
      else if (n.status === 'failed') say(`Failed: ${n.reason || n.response || 'no reason given'}`, 'outcome-bad');
      else if (n.status === 'muted') say(`Muted: ${n.reason || 'no reason given'}`);
      else say(`Still ${n.status} after 10 s${n.reason ? `: ${n.reason}` : ''}. See Alerts › Deliveries.`);
    } catch (err) {
      say(`Could not send a test: ${err.message}`, 'outcome-bad');
    } finally {
      btn.disabled = false;
    }
  }

  function openChannel(ch) {
    formSlot.replaceChildren(channelForm(ctx, ch, (changed) => {
      formSlot.replaceChildren();
      if (changed) load();
    }));
    formSlot.querySelector('input').focus();
  }

  async function load() {
    let chs;
    let rules;
    try {
      [chs, rules] = await Promise.all([get(pp(p.id, 'channels'), { signal: ctx.signal }), get(pp(p.id, 'alert-rules'), { signal: ctx.signal })]);
    } catch (err) {
      if (err.name !== 'AbortError') chList.replaceChildren(errorBox(err, 'Could not load the channels'));
      return;
    }
    channelItems = chs.items || [];
    const newBtn = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-primary btn-small', onclick: () => openChannel(null) }, 'New channel') : null;
    chList.replaceChildren(h('div', { class: 'card-head' }, h('h2', { id: 'channels-title' }, 'Channels'), newBtn),
      channelItems.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' },
        h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Settings', 'Secrets', 'Enabled', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, channelItems.map((c) => {
          const edit = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => openChannel(c) }, 'Edit') : null;
          const remove = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Delete') : null;
          if (remove) {
            remove.addEventListener('click', async () => {
              if (!await confirmDialog(`Delete “${c.name}”?`, 'Alert rules stop sending to it.')) return;
              try {
                await del(pp(p.id, 'channels', c.id));
                announce('Channel deleted');
                load();
              } catch (err) {
                msg.replaceChildren(errorBox(err, 'Could not delete the channel'));
              }
            });
          }
          const outcome = h('span', { class: 'test-outcome', role: 'status', 'aria-live': 'polite' });
          const test = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Send test: ${c.name}` }, 'Send test') : null;
          if (test) test.addEventListener('click', () => sendTest(c, test, outcome));
          const cfg = Object.entries(c.config || {}).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('; ');
          return h('tr', {},
            h('td', { 'data-label': 'Name' }, c.name),
            h('td', { 'data-label': 'Kind' }, (KINDS[c.kind] || { label: c.kind }).label),
            h('td', { 'data-label': 'Settings' }, cfg ? h('code', {}, cfg) : h('span', { class: 'muted' }, '—')),
            h('td', { 'data-label': 'Secrets' }, Object.keys(c.secrets || {}).length
              ? Object.keys(c.secrets).map((k) => h('span', { class: 'tag' }, `${k} •••• set`)) : h('span', { class: 'muted' }, 'none')),
            h('td', { 'data-label': 'Enabled' }, toggle(c)),
            h('td', {}, h('div', { class: 'channel-actions' }, h('div', { class: 'page-actions' }, test, edit, remove), outcome)));
        })))) : emptyState('No channels', 'A channel is where alerts go: an e-mail list, a webhook, Slack, PagerDuty…'));

    const newRule = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-primary btn-small' }, 'New rule') : null;
    if (newRule) {
      newRule.addEventListener('click', () => {
        ruleSlot.replaceChildren(ruleForm(ctx, channelItems, (changed) => {
          ruleSlot.replaceChildren();
          if (changed) load();
        }));
        ruleSlot.querySelector('input').focus();
      });
    }
    const names = new Map(channelItems.map((c) => [c.id, c.name]));
    const items = rules.items || [];
    ruleList.replaceChildren(h('div', { class: 'card-head' }, h('h2', { id: 'rules-title' }, 'Alert rules'), newRule),
      items.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' },
        h('thead', {}, h('tr', {}, ['Rule', 'Tests', 'Opens after', 'Resolves after', 'Channels', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, items.map((r) => {
          const remove = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Delete') : null;
          if (remove) {
            remove.addEventListener('click', async () => {
              if (!await confirmDialog(`Delete the rule “${r.name}”?`, 'No more alerts are sent for it.')) return;
              try {
                await del(pp(p.id, 'alert-rules', r.id));
                load();
              } catch (err) {
                msg.replaceChildren(errorBox(err, 'Could not delete the rule'));
              }
            });
          }
          return h('tr', {},
            h('td', { 'data-label': 'Rule' }, r.name, r.enabled === false ? h('span', { class: 'muted' }, ' (off)') : null),
            h('td', { 'data-label': 'Tests' }, (r.tags || []).length ? r.tags.map((t) => h('span', { class: 'tag' }, t))
              : (r.test_ids || []).length ? `${r.test_ids.length} tests` : 'all tests'),
            h('td', { 'data-label': 'Opens after' }, `${r.failures_to_open} failures`),
            h('td', { 'data-label': 'Resolves after' }, `${r.passes_to_resolve} passes`),
            h('td', { 'data-label': 'Channels' }, (r.channel_ids || []).map((id) => names.get(id) || id).join(', ') || h('span', { class: 'muted' }, 'none')),
            h('td', {}, remove));
        })))) : emptyState('No alert rules', 'A rule opens an incident after failures in a row and tells the channels you pick.'));
  }
  await load();
}
