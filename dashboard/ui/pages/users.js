// Administration › Users (administrators only): every account, and a form to create one (the
// new user then logs in with the password given here and can be added to projects).
import { get, post } from '/ui/api.js';
import { announce, clearFormErrors, errorBox, field, h, notice, pageHeader, showFormError, timeEl, uid } from '/ui/dom.js';

export async function render(ctx) {
  ctx.setTitle('Users');
  ctx.main.append(pageHeader('Users'));
  if (!ctx.session.user.is_admin) {
    ctx.main.append(notice('Only administrators manage users.', 'warning'));
    return;
  }
  const list = h('div', { class: 'card' });
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '200' });
  const password = h('input', { type: 'password', name: 'password', required: true, autocomplete: 'new-password' });
  const admin = h('input', { type: 'checkbox', name: 'is_admin', id: uid('adm') });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create user');
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-user-title', novalidate: true },
    h('h2', { id: 'new-user-title' }, 'New user'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'form-grid cols-3' }, field('E-mail', email), field('Name', name), field('Initial password', password)),
    h('div', { class: 'field field-inline' }, admin, h('label', { for: admin.id }, 'Administrator (sees and manages everything)')),
    h('div', { class: 'form-actions' }, submit));
  ctx.main.append(list, form);

  async function load() {
    try {
      const data = await get('/users', { signal: ctx.signal });
      list.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'responsive' },
        h('thead', {}, h('tr', {}, ['Name', 'E-mail', 'Role', 'Created'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, (data.items || []).map((u) => h('tr', {},
          h('td', { 'data-label': 'Name' }, u.name),
          h('td', { 'data-label': 'E-mail' }, u.email),
          h('td', { 'data-label': 'Role' }, u.is_admin ? 'administrator' : 'user', u.disabled ? h('span', { class: 'muted' }, ' (disabled)') : null),
          h('td', { 'data-label': 'Created' }, timeEl(u.created_at))))))));
    } catch (err) {
      if (err.name !== 'AbortError') list.replaceChildren(errorBox(err, 'Could not load the users'));
    }
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      await post('/users', { email: email.value.trim(), name: name.value.trim() || email.value.trim(), password: password.value, is_admin: admin.checked });
      announce('User created');
      form.reset();
      load();
    } catch (err) {
      showFormError(form, err, 'Could not create the user');
    } finally {
      submit.disabled = false;
    }
  });
  await load();
}
