// A project's settings, one tab each: General (rename, delete), Environments, Members, API keys
// and Channels (with alert rules). The tab is part of the address
// (/app/projects/P/settings/members); tabs are links, so the browser's back button works.
import { del, get, patch, post, pp, put } from '/ui/api.js';
import {
  announce, clearFormErrors, confirmDialog, copyButton, emptyState, errorBox, field, h, notice, pageHeader, showFormError, timeEl,
} from '/ui/dom.js';

const TABS = [
  ['general', 'General'],
  ['environments', 'Environments'],
  ['members', 'Members'],
  ['api-keys', 'API keys'],
  ['channels', 'Channels and alerts'],
];

// ---- general ----------------------------------------------------------------------------

async function general(ctx, root) {
  const p = ctx.project;
  const name = h('input', { type: 'text', name: 'name', value: p.name, maxlength: '200', required: true });
  const slug = h('input', { type: 'text', name: 'slug', value: p.slug, maxlength: '63', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', disabled: !ctx.isOwner() }, 'Save');
  const form = h('form', { class: 'card', 'aria-labelledby': 'gen-title', novalidate: true },
    h('h2', { id: 'gen-title' }, 'Project'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'form-grid cols-2' }, field('Name', name), field('Slug', slug, 'Changing it changes the CI examples that use it.')),
    h('div', { class: 'form-actions' }, submit, ctx.isOwner() ? null : h('span', { class: 'muted' }, 'Only owners can change the project.')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      await patch(pp(p.id), { name: name.value.trim(), slug: slug.value.trim() });
      await ctx.reloadProject();
      form.querySelector('.form-alert').append(notice('✓ Saved.', 'success'));
      announce('Project saved');
    } catch (err) {
      showFormError(form, err);
    } finally {
      submit.disabled = !ctx.isOwner();
    }
  });
  root.append(form);
  if (ctx.isOwner()) {
    const delBtn = h('button', { type: 'button', class: 'btn btn-danger' }, 'Delete this project');
    const box = h('section', { class: 'card', 'aria-labelledby': 'danger-title' }, h('h2', { id: 'danger-title' }, 'Delete the project'),
      h('p', {}, 'Deletes its tests, schedules, environments, keys, channels and every result. This cannot be undone.'), delBtn);
    delBtn.addEventListener('click', async () => {
      if (!await confirmDialog(`Delete “${p.name}”?`, 'Everything in the project is deleted for good.', 'Delete the project')) return;
      try {
        await del(pp(p.id));
        announce('Project deleted');
        ctx.navigate('/app/projects', { replace: true });
      } catch (err) {
        box.append(errorBox(err, 'Could not delete the project'));
      }
    });
    root.append(box);
  }
}

// ---- members ----------------------------------------------------------------------------

async function members(ctx, root) {
  const p = ctx.project;
  const msg = h('div');
  const list = h('div', { class: 'card' });
  root.append(msg, list);
  async function load() {
    let data;
    try {
      data = await get(pp(p.id, 'members'), { signal: ctx.signal });
    } catch (err) {
      if (err.name !== 'AbortError') list.replaceChildren(errorBox(err, 'Could not load the members'));
      return;
    }
    const me = ctx.session.user.id;
    list.replaceChildren(h('h2', {}, 'Members'), h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' },
      h('thead', {}, h('tr', {}, ['Person', 'E-mail', 'Role', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, (data.items || []).map((m) => {
        const role = h('select', { 'aria-label': `Role of ${m.email}`, disabled: !ctx.isOwner() },
          ['owner', 'editor', 'viewer'].map((r) => h('option', { value: r, selected: r === m.role }, r)));
        role.addEventListener('change', async () => {
          msg.replaceChildren();
          try {
            await put(pp(p.id, 'members', m.user_id), { role: role.value });
            announce(`${m.email} is now ${role.value}`);
            if (m.user_id === me) await ctx.reloadProject();
          } catch (err) {
            role.value = m.role;
            msg.replaceChildren(errorBox(err, 'Could not change the role'));
          }
        });
        const remove = ctx.isOwner() || m.user_id === me
          ? h('button', { type: 'button', class: 'btn btn-small btn-danger' }, m.user_id === me ? 'Leave' : 'Remove') : null;
        if (remove) {
          remove.addEventListener('click', async () => {
            if (!await confirmDialog(m.user_id === me ? 'Leave this project?' : `Remove ${m.email}?`, 'They lose access to the project at once.', m.user_id === me ? 'Leave' : 'Remove')) return;
            try {
              await del(pp(p.id, 'members', m.user_id));
              announce('Member removed');
              if (m.user_id === me) ctx.navigate('/app/projects', { replace: true });
              else load();
            } catch (err) {
              msg.replaceChildren(errorBox(err, 'Could not remove the member'));
            }
          });
        }
        return h('tr', {},
          h('td', { 'data-label': 'Person' }, m.name || m.email, m.user_id === me ? h('span', { class: 'muted' }, ' (you)') : null),
          h('td', { 'data-label': 'E-mail' }, m.email),
          h('td', { 'data-label': 'Role' }, role),
          h('td', {}, remove));
      })))));
  }
  await load();
  if (!ctx.isOwner()) return;
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const role = h('select', { name: 'role' }, ['viewer', 'editor', 'owner'].map((r) => h('option', { value: r }, r)));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add member');
  const form = h('form', { class: 'card', 'aria-labelledby': 'add-member-title', novalidate: true },
    h('h2', { id: 'add-member-title' }, 'Add a member'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'inline-form' }, field('E-mail of an existing user', email), field('Role', role), submit),
    h('p', { class: 'hint' }, 'Viewers read; editors change tests, schedules and environments; owners also manage members and API keys.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      await post(pp(p.id, 'members'), { email: email.value.trim(), role: role.value });
      email.value = '';
      announce('Member added');
      load();
    } catch (err) {
      showFormError(form, err, 'Could not add the member');
    } finally {
      submit.disabled = false;
    }
  });
  root.append(form);
}

// ---- API keys ---------------------------------------------------------------------------

async function apiKeys(ctx, root) {
  const p = ctx.project;
  if (!ctx.isOwner()) {
    root.append(h('div', { class: 'card' }, h('h2', {}, 'API keys'), h('p', {}, 'Only the project\'s owners manage API keys.')));
    return;
  }
  const tokenSlot = h('div', { 'aria-live': 'polite' });
  const msg = h('div');
  const list = h('div', { class: 'card' });
  async function load() {
    let data;
    try {
      data = await get(pp(p.id, 'api-keys'), { signal: ctx.signal });
    } catch (err) {
      if (err.name !== 'AbortError') list.replaceChildren(errorBox(err, 'Could not load the API keys'));
      return;
    }
    const items = data.items || [];
    list.replaceChildren(h('h2', {}, 'API keys'), items.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' },
      h('thead', {}, h('tr', {}, ['Name', 'Role', 'Prefix', 'Created', 'Last used', 'Expires', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((k) => {
        const revoked = !!k.revoked_at;
        const btn = revoked ? h('span', { class: 'muted' }, 'revoked') : h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Revoke ${k.name}` }, 'Revoke');
        if (!revoked) {
          btn.addEventListener('click', async () => {
            if (!await confirmDialog(`Revoke “${k.name}”?`, 'CI jobs using it stop working at once.', 'Revoke')) return;
            try {
              await del(pp(p.id, 'api-keys', k.id));
              announce('Key revoked');
              load();
            } catch (err) {
              msg.replaceChildren(errorBox(err, 'Could not revoke the key'));
            }
          });
        }
        return h('tr', {},
          h('td', { 'data-label': 'Name' }, k.name),
          h('td', { 'data-label': 'Role' }, k.role),
          h('td', { 'data-label': 'Prefix' }, h('code', {}, `rpk_${k.prefix}_…`)),
          h('td', { 'data-label': 'Created' }, timeEl(k.created_at)),
          h('td', { 'data-label': 'Last used' }, k.last_used_at ? timeEl(k.last_used_at) : h('span', { class: 'muted' }, 'never')),
          h('td', { 'data-label': 'Expires' }, k.expires_at ? timeEl(k.expires_at) : h('span', { class: 'muted' }, 'never')),
          h('td', {}, btn));
      })))) : emptyState('No API keys', 'A key lets a CI job call the API as an editor or viewer of this project.'));
  }
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '100', placeholder: 'e.g. GitHub Actions' });
  const role = h('select', { name: 'role' }, h('option', { value: 'editor' }, 'editor (can run tests)'), h('option', { value: 'viewer' }, 'viewer (read only)'));
  const days = h('input', { type: 'number', name: 'expires_in_days', min: '1', max: '3650', inputmode: 'numeric', placeholder: 'never' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create key');
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-key-title', novalidate: true },
    h('h2', { id: 'new-key-title' }, 'New API key'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'inline-form' }, field('Name', name), field('Role', role), field('Expires in (days)', days), submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    const body = { name: name.value.trim(), role: role.value };
    if (days.value) body.expires_in_days = Number(days.value);
    submit.disabled = true;
    try {
      const k = await post(pp(p.id, 'api-keys'), body);
      name.value = '';
      days.value = '';
      const code = h('code', { class: 'token' }, k.token);
      tokenSlot.replaceChildren(h('div', { class: 'alert alert-success', role: 'status' },
        h('strong', {}, `Key “${k.name}” created. Copy its token now: it is not shown again.`),
        h('div', { class: 'token-box' }, code, copyButton(() => k.token, 'Copy token')),
        h('p', { class: 'hint' }, 'Use it as ', h('code', {}, 'Authorization: Bearer <token>'), '.')));
      announce('Key created. Copy its token now: it is not shown again.');
      load();
    } catch (err) {
      showFormError(form, err, 'Could not create the key');
    } finally {
      submit.disabled = false;
    }
  });
  root.append(tokenSlot, msg, form, list);
  await load();
}

// ---- the page ---------------------------------------------------------------------------

export async function render(ctx) {
  const p = ctx.project;
  const tab = ctx.params.tab || 'general';
  const known = TABS.find(([k]) => k === tab);
  ctx.setTitle(`Settings · ${p.name}`);
  ctx.main.append(pageHeader(known ? `Settings: ${known[1]}` : 'Settings'),
    h('nav', { class: 'subnav', 'aria-label': 'Settings' }, h('ul', { class: 'tabs' }, TABS.map(([k, label]) => h('li', {},
      h('a', { href: `/app/projects/${p.id}/settings/${k}`, 'aria-current': k === tab ? 'page' : null }, label))))));
  const root = h('div');
  ctx.main.append(root);
  if (tab === 'general') return general(ctx, root);
  if (tab === 'members') return members(ctx, root);
  if (tab === 'api-keys') return apiKeys(ctx, root);
  if (tab === 'environments') return (await import('/ui/pages/settings-environments.js')).environments(ctx, root);
  if (tab === 'channels') return (await import('/ui/pages/settings-channels.js')).channels(ctx, root);
  root.append(errorBox({ message: `There is no settings tab “${tab}”.` }, 'Not found'));
  return undefined;
}
