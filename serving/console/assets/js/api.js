// The gateway's JSON API, called with the signed-in API key.

const keyName = 'mlgate.key';

export const session = {
  get key() { return sessionStorage.getItem(keyName); },
  set key(k) {
    if (k === null) sessionStorage.removeItem(keyName);
    else sessionStorage.setItem(keyName, k);
  },
  // who is the signed-in caller: {name, roles}.
  who: null,
  // can says whether the caller holds role; admin holds them all.
  can(role) {
    const roles = this.who ? this.who.roles : [];
    return roles.includes('admin') || roles.includes(role);
  },
};

// ApiError carries the HTTP status and the gateway's message.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// api calls the gateway and returns its decoded JSON answer (null for 204),
// or throws an ApiError with the gateway's own message.
export async function api(method, path, body) {
  const headers = {};
  const key = session.key;
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = data && data.error ? data.error : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, msg);
  }
  return data;
}

export const get = (path) => api('GET', path);

// changes fires "change" when the user has changed something through the
// console, so that the shown view reads the gateway again at once.
export const changes = new EventTarget();
export const changed = () => changes.dispatchEvent(new Event('change'));

// seg encodes one path segment.
export const seg = encodeURIComponent;

// auditTrail returns the newest events of the audit trail that match
// query ("model=NAME" or "endpoint=NAME"), newest first.
export async function auditTrail(query, newest = 50) {
  return (await get(`/v1/audit?${query}&order=newest&limit=${newest}`)).events;
}
