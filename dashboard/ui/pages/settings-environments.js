// Settings › Environments: named sets of variables that runs and schedules use. Secret values
// are write-only: the API never returns them, so a stored secret shows "•••• set" and can only
// be replaced; saving sends {"secret": true} for it, which keeps the stored value.
import { del, get, patch, post, pp } from '/ui/api.js';
import { announce, clearFormErrors, confirmDialog, emptyState, errorBox, field, h, showFormError, uid } from '/ui/dom.js';

function isSecret(v) {
  return v && typeof v === 'object' && !Array.isArray(v) && v.secret === true && !('value' in v);
}

/** The variables as [name, value] pairs in name order (jsonb keeps its own order). */
function sortedVars(vars) {
  return Object.entries(vars || {}).sort(([a], [b]) => a.localeCompare(b));
}

function shown(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** One variable row of the form. */
function varRow(name = '', value = '', opts = {}) {
  const row = { keep: !!opts.keep, origString: opts.origString !== false };
  const nameIn = h('input', { type: 'text', value: name, 'aria-label': 'Variable name', placeholder: 'name', autocomplete: 'off', class: 'var-name' });
  const secret = h('input', { type: 'checkbox', checked: !!opts.secret, id: uid('sec') });
  const valueIn = h('input', { type: opts.secret ? 'password' : 'text', value, 'aria-label': 'Value', placeholder: 'value', autocomplete: 'off', class: 'var-value' });
  const slot = h('div', { class: 'var-value-slot' });
  const replace = h('button', { type: 'button', class: 'btn btn-small' }, 'Replace');
  const setBox = h('span', { class: 'secret-set' }, h('span', { 'aria-label': 'secret value set' }, '•••• set'), replace);
  function drawValue() {
    slot.replaceChildren(row.keep ? setBox : valueIn);
  }
  replace.addEventListener('click', () => {
    row.keep = false;
    valueIn.value = '';
    valueIn.type = 'password';
    drawValue();
    valueIn.focus();
  });
  secret.addEventListener('change', () => {
    if (!secret.checked && row.keep) {
      row.keep = false;
      valueIn.value = '';
      drawValue();
    }
    valueIn.type = secret.checked ? 'password' : 'text';
  });
  const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': 'Remove this variable' }, 'Remove');
  row.el = h('div', { class: 'var-row' }, nameIn, slot, h('label', { class: 'field-inline', for: secret.id }, secret, ' Secret'), remove);
  remove.addEventListener('click', () => row.el.remove());
  drawValue();
  row.read = () => {
    const n = nameIn.value.trim();
    if (!n) return null;
    if (secret.checked && row.keep) return [n, { secret: true }];
    let v = valueIn.value;
    if (!row.origString) {
      try { v = JSON.parse(v); } catch { /* keep the text */ }
    }
    if (secret.checked) {
      if (valueIn.value === '') throw Object.assign(new Error(`Enter a value for the secret “${n}”.`), { input: valueIn });
      return [n, { value: v, secret: true }];
    }
    return [n, v];
  };
  return row;
}

function envForm(ctx, env, onDone) {
  const p = ctx.project;
  const name = h('input', { type: 'text', name: 'name', value: env ? env.name : '', required: true, maxlength: '100' });
  const rows = [];
  const rowsBox = h('div', { class: 'var-rows' });
  const addRow = (r) => {
    rows.push(r);
    rowsBox.append(r.el);
    return r;
  };
  for (const [k, v] of sortedVars(env && env.variables)) {
    if (isSecret(v)) addRow(varRow(k, '', { secret: true, keep: true }));
    else addRow(varRow(k, shown(v), { origString: typeof v === 'string' }));
  }
  if (!rows.length) addRow(varRow());
  const add = h('button', { type: 'button', class: 'btn btn-small' }, 'Add a variable');
  add.addEventListener('click', () => addRow(varRow()).el.querySelector('input').focus());
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, env ? 'Save environment' : 'Create environment');
  const cancel = h('button', { type: 'button', class: 'btn', onclick: () => onDone(false) }, 'Cancel');
  const titleId = uid('env-title');
  const form = h('form', { class: 'card', 'aria-labelledby': titleId, novalidate: true },
    h('h2', { id: titleId }, env ? `Edit “${env.name}”` : 'New environment'),
    h('div', { class: 'form-alert' }),
    field('Name', name, 'e.g. production, staging'),
    h('fieldset', {}, h('legend', {}, 'Variables'),
      h('p', { class: 'hint' }, 'Used in tests as ${name}. Secret values are never shown again once saved, and are hidden in results.'),
      rowsBox, h('input', { type: 'hidden', name: 'variables' }), add),
    h('div', { class: 'form-actions' }, submit, cancel));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    const variables = {};
    try {
      for (const r of rows) {
        if (!r.el.isConnected) continue;
        const kv = r.read();
        if (kv) variables[kv[0]] = kv[1];
      }
    } catch (err) {
      showFormError(form, { message: err.message });
      if (err.input) err.input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const body = { name: name.value.trim(), variables };
      if (env) await patch(pp(p.id, 'environments', env.id), body);
      else await post(pp(p.id, 'environments'), body);
      announce(env ? 'Environment saved' : 'Environment created');
      onDone(true);
    } catch (err) {
      showFormError(form, err, 'Could not save the environment');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function environments(ctx, root) {
  const p = ctx.project;
  const msg = h('div');
  const formSlot = h('div');
  const list = h('div');
  const newBtn = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-primary' }, 'New environment') : null;
  root.append(h('div', { class: 'split' }, h('p', { class: 'muted' }, 'Environments hold the variables a run uses (base URLs, tokens).'), newBtn), msg, formSlot, list);

  function openForm(env) {
    const f = envForm(ctx, env, (changed) => {
      formSlot.replaceChildren();
      if (changed) load();
      (newBtn || list).focus();
    });
    formSlot.replaceChildren(f);
    f.querySelector('input').focus();
  }
  if (newBtn) newBtn.addEventListener('click', () => openForm(null));

  async function load() {
    let data;
    try {
      data = await get(pp(p.id, 'environments'), { signal: ctx.signal });
    } catch (err) {
      if (err.name !== 'AbortError') list.replaceChildren(errorBox(err, 'Could not load the environments'));
      return;
    }
    const items = data.items || [];
    if (!items.length) {
      list.replaceChildren(h('div', { class: 'card' }, emptyState('No environments', 'Create one to give runs a base URL, credentials and other values.')));
      return;
    }
    list.replaceChildren(...items.map((e) => {
      const vars = sortedVars(e.variables);
      const edit = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-small' }, 'Edit') : null;
      const remove = ctx.canEdit() ? h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Delete') : null;
      if (edit) {
        edit.addEventListener('click', async () => {
          try {
            openForm(await get(pp(p.id, 'environments', e.id)));
          } catch (err) {
            msg.replaceChildren(errorBox(err, 'Could not open the environment'));
          }
        });
      }
      if (remove) {
        remove.addEventListener('click', async () => {
          if (!await confirmDialog(`Delete “${e.name}”?`, 'Schedules that use it run without it from now on.')) return;
          try {
            await del(pp(p.id, 'environments', e.id));
            announce('Environment deleted');
            load();
          } catch (err) {
            msg.replaceChildren(errorBox(err, 'Could not delete the environment'));
          }
        });
      }
      return h('section', { class: 'card', 'aria-label': `Environment ${e.name}` },
        h('div', { class: 'card-head' }, h('h2', {}, e.name), h('div', { class: 'page-actions' }, edit, remove)),
        vars.length ? h('table', { class: 'kv' }, h('tbody', {}, vars.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k),
          h('td', {}, isSecret(v) ? h('span', { class: 'secret-set' }, '•••• set') : shown(v))))))
          : h('p', { class: 'muted' }, 'No variables.'));
    }));
  }
  await load();
}
