// Projects: the ones the user is a member of (admins see all), with their role and how many
// tests and schedules each has; a form to create one (the creator becomes its owner).
import { get, post } from '/ui/api.js';
import { clearFormErrors, emptyState, errorBox, field, h, pageHeader, showFormError, slugify } from '/ui/dom.js';

function createForm(ctx, onCancel) {
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '200', autocomplete: 'off' });
  const slug = h('input', { type: 'text', name: 'slug', required: true, maxlength: '63', pattern: '[a-z0-9][a-z0-9-]{0,62}', autocomplete: 'off' });
  let slugTouched = false;
  name.addEventListener('input', () => { if (!slugTouched) slug.value = slugify(name.value); });
  slug.addEventListener('input', () => { slugTouched = true; });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create project');
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-project-title', novalidate: true },
    h('h2', { id: 'new-project-title' }, 'New project'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'form-grid cols-2' },
      field('Name', name, 'Shown everywhere, e.g. "Payments API".'),
      field('Slug', slug, 'Lower-case letters, digits and dashes; used in URLs and by CI.')),
    h('div', { class: 'form-actions' }, submit,
      onCancel ? h('button', { type: 'button', class: 'btn', onclick: onCancel }, 'Cancel') : null));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    if (!name.value.trim()) return showFormError(form, { message: 'Give the project a name.', field: 'name' });
    if (!slug.value.trim()) return showFormError(form, { message: 'Give the project a slug.', field: 'slug' });
    submit.disabled = true;
    try {
      const p = await post('/projects', { name: name.value.trim(), slug: slug.value.trim() });
      ctx.navigate(`/app/projects/${p.id}/tests`);
    } catch (err) {
      showFormError(form, err, 'Could not create the project');
    } finally {
      submit.disabled = false;
    }
    return undefined;
  });
  return { form, focus: () => name.focus() };
}

export async function render(ctx) {
  ctx.setTitle('Projects');
  const holder = h('div');
  const newBtn = h('button', { type: 'button', class: 'btn btn-primary' }, 'New project');
  ctx.main.append(pageHeader('Projects', newBtn), holder);
  const formSlot = h('div');
  holder.before(formSlot);
  newBtn.addEventListener('click', () => {
    if (formSlot.firstChild) return formSlot.querySelector('input').focus();
    const f = createForm(ctx, () => { formSlot.replaceChildren(); newBtn.focus(); });
    formSlot.append(f.form);
    f.focus();
    return undefined;
  });

  let data;
  try {
    data = await get('/projects', { signal: ctx.signal });
  } catch (err) {
    if (err.name === 'AbortError') return;
    holder.append(errorBox(err, 'Could not load your projects'));
    return;
  }
  const items = data.items || [];
  if (!items.length) {
    holder.append(h('div', { class: 'card' }, emptyState('No projects yet',
      'A project groups API tests, their schedules, environments and the people who work on them.')));
    const f = createForm(ctx, null);
    formSlot.append(f.form);
    return;
  }
  const rows = items.map((p) => h('tr', {},
    h('td', { 'data-label': 'Project' }, h('a', { href: `/app/projects/${p.id}/tests`, class: 'row-title' }, p.name)),
    h('td', { 'data-label': 'Slug' }, h('code', {}, p.slug)),
    h('td', { 'data-label': 'Your role' }, p.role),
    h('td', { 'data-label': 'Tests', class: 'num' }, String(p.tests ?? '—')),
    h('td', { 'data-label': 'Schedules', class: 'num' }, String(p.schedules ?? '—'))));
  holder.append(h('div', { class: 'card' }, h('div', { class: 'table-wrap' },
    h('table', { class: 'responsive' },
      h('caption', { class: 'visually-hidden' }, 'Your projects'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Project'), h('th', { scope: 'col' }, 'Slug'),
        h('th', { scope: 'col' }, 'Your role'), h('th', { scope: 'col', class: 'num' }, 'Tests'),
        h('th', { scope: 'col', class: 'num' }, 'Schedules'))),
      h('tbody', {}, rows)))));
}
