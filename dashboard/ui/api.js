// The dashboard's REST API (/api/v1) as the UI uses it: JSON in and out, the session cookie
// (sent by the browser) plus the CSRF token echoed in X-CSRF-Token on every write, and one
// error type (ApiError) carrying the API's {"error": {code, message, field, request_id}}.
// A 401 on any call other than the session check fires "rampart:unauthenticated", which the
// shell answers by showing the login page.

let csrfToken = null;

export function setCsrf(token) {
  csrfToken = token || null;
}

export class ApiError extends Error {
  constructor(status, body, fallback) {
    const e = (body && body.error) || {};
    super(e.message || fallback || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = e.code || (status ? `http_${status}` : 'network');
    this.field = e.field || null;
    this.requestId = e.request_id || null;
    this.details = e; // every member (path, line, column, ...)
  }
}

/** Query string from an object, skipping empty values: qs({a: 1, b: ''}) -> "?a=1". */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/**
 * api('POST', '/projects', {name}) -> the parsed JSON answer (null for 204).
 * Throws ApiError for any status >= 400 and for network failures.
 * opts.quiet401: do not signal the shell on 401 (the session check uses it).
 * opts.signal: an AbortSignal.
 */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, null, `Cannot reach the dashboard (${err && err.message ? err.message : 'network error'}). Check your connection and retry.`);
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('json')) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  } else {
    data = await res.text();
  }
  if (!res.ok) {
    const err = new ApiError(res.status, typeof data === 'object' ? data : null,
      res.status === 404 ? 'Not found (or you have no access to it).' : `The dashboard answered HTTP ${res.status}.`);
    if (res.status === 401 && !opts.quiet401) {
      window.dispatchEvent(new CustomEvent('rampart:unauthenticated'));
    }
    throw err;
  }
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);
export const put = (path, body, opts) => api('PUT', path, body, opts);
export const patch = (path, body, opts) => api('PATCH', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

/** Path of a project's sub-resource: pp(projectId, 'tests', testId) -> /projects/P/tests/T. */
export function pp(projectId, ...parts) {
  return `/projects/${encodeURIComponent(projectId)}${parts.map((p) => `/${encodeURIComponent(p)}`).join('')}`;
}
