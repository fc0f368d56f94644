// The login page: e-mail and password against POST /api/v1/session; then back to the page
// the user wanted (?next=, same-origin paths only).
import { post } from '/ui/api.js';
import { clearFormErrors, field, h, notice, showFormError } from '/ui/dom.js';

export async function render(ctx) {
  ctx.setTitle('Log in');
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Log in');
  const form = h('form', { class: 'form-grid', novalidate: true },
    h('div', { class: 'form-alert' }),
    field('E-mail', email), field('Password', password), submit);
  const expired = ctx.query.get('expired') ? notice('Your session has ended. Please log in again.', 'warning') : null;
  ctx.main.append(h('div', { class: 'login-wrap' }, h('div', { class: 'card login-card' },
    h('h1', { tabindex: '-1' }, 'Log in to Rampart'), expired, form)));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    if (!email.value.trim() || !password.value) {
      showFormError(form, { message: 'Enter your e-mail and password.', field: email.value.trim() ? 'password' : 'email' });
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    try {
      const s = await post('/session', { email: email.value.trim(), password: password.value }, { quiet401: true });
      ctx.setSession(s);
      let next = ctx.query.get('next') || '/app/projects';
      if (!next.startsWith('/app') || next.startsWith('/app/login')) next = '/app/projects';
      ctx.navigate(next, { replace: true });
    } catch (err) {
      if (err.status === 400 && !err.field) err.field = 'email';
      showFormError(form, err, 'Could not log in');
      if (err.status === 401) password.select();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Log in';
    }
  });
  email.focus();
}
