// The shell of Rampart's web UI: session check, the top bar (project navigation, user, log
// out), client-side routing under /app/... (history API; every /app path is served
// index.html by the dashboard) and the page lifecycle. Each page is a module in /ui/pages/
// exporting render(ctx); it draws into ctx.main and registers timers with ctx.onCleanup, which
// run when the user leaves the page. Pages are loaded on first use (dynamic import).
import { api, get, setCsrf } from '/ui/api.js';
import { announce, clear, errorBox, h, loading } from '/ui/dom.js';

const ROUTES = [
  ['/app/login', 'login', { bare: true }],
  ['/app/projects', 'projects'],
  ['/app/projects/:p/tests', 'tests'],
  ['/app/projects/:p/tests/new', 'test'],
  ['/app/projects/:p/tests/:t', 'test'],
  ['/app/projects/:p/runs', 'runs'],
  ['/app/projects/:p/runs/:r', 'run'],
  ['/app/projects/:p/schedules', 'schedules'],
  ['/app/projects/:p/alerts', 'alerts'],
  ['/app/projects/:p/settings', 'settings'],
  ['/app/projects/:p/settings/:tab', 'settings'],
  ['/app/admin/users', 'users'],
];

const REDIRECTS = [
  [/^\/(app\/?)?$/, () => '/app/projects'],
  [/^\/app\/projects\/([^/]+)\/?$/, (m) => `/app/projects/${m[1]}/tests`],
];

const state = {
  session: null, // {user, csrf_token}
  sessionChecked: false, // GET /session answered (null session: not logged in)
  project: null, // the current project (GET /projects/{id}), with role
  nav: 0, // navigation counter: a stale page render is dropped
  cleanups: [],
};

function match(path) {
  for (const [pattern, page, opts] of ROUTES) {
    const names = [];
    const re = new RegExp(`^${pattern.replace(/:([a-z]+)/g, (_, n) => {
      names.push(n);
      return '([^/]+)';
    })}/?$`);
    const m = path.match(re);
    if (m) {
      const params = {};
      names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
      return { page, params, opts: opts || {} };
    }
  }
  return null;
}

export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  route(true);
}

function setTitle(t) {
  document.title = t ? `${t} · Rampart` : 'Rampart';
}

// ---- top bar ----------------------------------------------------------------------------

function logo() {
  const img = h('img', { src: '/ui/logo.svg', alt: '', width: '24', height: '24', class: 'brand-logo' });
  return h('a', { href: '/app/projects', class: 'brand' }, img, h('span', {}, 'Rampart'));
}

async function logout() {
  try {
    await api('DELETE', '/session', undefined, { quiet401: true });
  } catch {
    // already logged out or the server is gone: leave anyway
  }
  state.session = null;
  state.project = null;
  setCsrf(null);
  announce('Logged out');
  navigate('/app/login', { replace: true });
}

function renderTopbar(current) {
  const bar = document.getElementById('topbar');
  clear(bar);
  const inner = h('div', { class: 'topbar-inner' }, logo());
  if (state.session && !current.opts.bare) {
    const p = state.project;
    if (p && current.params.p) {
      const base = `/app/projects/${p.id}`;
      const links = [['tests', 'Tests'], ['runs', 'Runs'], ['schedules', 'Schedules'], ['alerts', 'Alerts'], ['settings', 'Settings']];
      const section = location.pathname.split('/')[4] || 'tests';
      inner.append(h('nav', { class: 'project-nav', 'aria-label': 'Project' },
        h('a', { href: '/app/projects', class: 'crumb', title: 'All projects' }, 'Projects'),
        h('span', { class: 'crumb-sep', 'aria-hidden': 'true' }, '/'),
        h('span', { class: 'crumb-project', title: p.slug }, p.name),
        h('ul', { class: 'tabs' }, links.map(([k, label]) => h('li', {},
          h('a', { href: `${base}/${k}`, 'aria-current': section === k ? 'page' : null }, label))))));
    } else {
      inner.append(h('nav', { class: 'project-nav', 'aria-label': 'Main' },
        h('ul', { class: 'tabs' },
          h('li', {}, h('a', { href: '/app/projects', 'aria-current': current.page === 'projects' ? 'page' : null }, 'Projects')),
          state.session.user.is_admin
            ? h('li', {}, h('a', { href: '/app/admin/users', 'aria-current': current.page === 'users' ? 'page' : null }, 'Users'))
            : null)));
    }
    inner.append(h('div', { class: 'user-menu' },
      h('span', { class: 'user-email', title: state.session.user.email }, state.session.user.name || state.session.user.email),
      h('button', { type: 'button', class: 'btn btn-small', onclick: logout }, 'Log out')));
  }
  bar.append(inner);
}

// ---- routing ----------------------------------------------------------------------------

async function ensureSession() {
  if (state.session || state.sessionChecked) return state.session;
  try {
    const s = await api('GET', '/session', undefined, { quiet401: true });
    if (s && s.user) {
      state.session = s;
      setCsrf(s.csrf_token);
    }
  } catch (err) {
    if (err.status !== 401) throw err;
  }
  state.sessionChecked = true;
  return state.session;
}

async function ensureProject(id) {
  if (!id) {
    state.project = null;
    return null;
  }
  if (!state.project || state.project.id !== id) state.project = await get(`/projects/${encodeURIComponent(id)}`);
  return state.project;
}

function runCleanups() {
  for (const fn of state.cleanups.splice(0)) {
    try { fn(); } catch { /* a page's timer cleanup cannot fail the next page */ }
  }
}

async function route(focus) {
  const nav = ++state.nav;
  runCleanups();
  const path = location.pathname;
  for (const [re, to] of REDIRECTS) {
    const m = path.match(re);
    if (m) {
      history.replaceState(null, '', to(m) + location.search);
      return route(focus);
    }
  }
  const main = document.getElementById('main');
  const current = match(path);
  const controller = new AbortController();
  state.cleanups.push(() => controller.abort());
  try {
    const session = await ensureSession();
    if (nav !== state.nav) return undefined;
    if (!current) {
      renderTopbar({ params: {}, opts: {}, page: '' });
      clear(main).append(h('div', { class: 'page' },
        h('h1', { tabindex: '-1' }, 'Page not found'),
        h('p', {}, 'There is nothing at ', h('code', {}, path), '. ', h('a', { href: '/app/projects' }, 'Go to your projects'), '.')));
      setTitle('Not found');
      return undefined;
    }
    if (!session && current.page !== 'login') {
      const next = path + location.search;
      history.replaceState(null, '', `/app/login?next=${encodeURIComponent(next)}`);
      return route(focus);
    }
    if (session && current.page === 'login') {
      history.replaceState(null, '', '/app/projects');
      return route(focus);
    }
    clear(main).append(loading());
    await ensureProject(current.params.p);
    if (nav !== state.nav) return undefined;
    renderTopbar(current);
    const mod = await import(`/ui/pages/${current.page}.js`);
    if (nav !== state.nav) return undefined;
    const container = h('div', { class: 'page' });
    const ctx = {
      params: current.params,
      query: new URLSearchParams(location.search),
      main: container,
      session: state.session,
      project: state.project,
      signal: controller.signal,
      navigate,
      setTitle,
      onCleanup: (fn) => state.cleanups.push(fn),
      isStale: () => nav !== state.nav,
      setSession: (s) => {
        state.session = s;
        setCsrf(s ? s.csrf_token : null);
      },
      reloadProject: async () => {
        state.project = null;
        await ensureProject(current.params.p);
        ctx.project = state.project;
        renderTopbar(current);
        return state.project;
      },
      canEdit: () => !!state.project && (state.project.role === 'owner' || state.project.role === 'editor'),
      isOwner: () => !!state.project && state.project.role === 'owner',
    };
    clear(main).append(container);
    await mod.render(ctx);
    if (nav !== state.nav) return undefined;
    if (focus) {
      const h1 = container.querySelector('h1');
      if (h1) h1.focus({ preventScroll: false });
    }
  } catch (err) {
    if (err && err.name === 'AbortError') return undefined;
    if (nav !== state.nav) return undefined;
    if (err && err.status === 401) return undefined; // the unauthenticated handler takes over
    renderTopbar(current || { params: {}, opts: {}, page: '' });
    const page = h('div', { class: 'page' }, h('h1', { tabindex: '-1' }, err && err.status === 404 ? 'Not found' : 'Could not load this page'),
      errorBox(err), h('p', {}, h('a', { href: '/app/projects' }, 'Back to your projects')));
    clear(main).append(page);
    setTitle('Error');
    if (focus) page.querySelector('h1').focus();
  }
  return undefined;
}

// ---- wiring -----------------------------------------------------------------------------

document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !(url.pathname === '/' || url.pathname.startsWith('/app'))) return;
  if (url.hash && url.pathname === location.pathname) return; // in-page anchor (skip link)
  ev.preventDefault();
  if (url.pathname + url.search === location.pathname + location.search) return;
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => route(true));

window.addEventListener('rampart:unauthenticated', () => {
  if (location.pathname === '/app/login') return;
  state.session = null;
  state.project = null;
  setCsrf(null);
  const next = location.pathname + location.search;
  navigate(`/app/login?next=${encodeURIComponent(next)}&expired=1`, { replace: true });
});

// "/" focuses the page's filter box (when not typing somewhere).
document.addEventListener('keydown', (ev) => {
  if (ev.key !== '/' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  const search = document.querySelector('[data-shortcut="search"]');
  if (search) {
    ev.preventDefault();
    search.focus();
  }
});

route(false);
