// The console's entry: sign-in, the routes of the page (#/endpoints,
// #/endpoints/NAME, #/models, #/models/NAME, #/drift, #/drift/NAME) and the
// poll that keeps the shown view live.

import { ApiError, changes, get, session } from './api.js';
import { field, h, put, say } from './dom.js';
import * as drift from './drift.js';
import * as endpoint from './endpoint.js';
import * as endpoints from './endpoints.js';
import * as models from './models.js';

// pollEvery is how often the shown view reads the gateway, in ms.
const pollEvery = 1000;

const main = document.getElementById('main');
const status = document.getElementById('status');
const nav = document.getElementById('nav');
const whoEl = document.getElementById('who');

const routes = {
  endpoints: [endpoints.list, endpoint.detail],
  models: [models.list, models.detail],
  drift: [drift.list, drift.detail],
};

let view = null;

function signInForm(error) {
  const msg = h('p', { className: 'msg' });
  const form = h('form', { className: 'signin card', 'aria-label': 'Sign in' },
    h('h1', { textContent: 'Sign in to mlgate' }),
    h('p', { className: 'muted', textContent: 'Give an API key of this gateway; it is kept in this tab only (session storage). '
      + 'A gateway with no keys configured takes any key, or none.' }),
    field('API key', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: false }),
    h('button', { type: 'submit', className: 'primary', textContent: 'Sign in' }), msg);
  if (error) say(msg, error, true);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    session.key = form.elements.key.value.trim();
    await signIn();
  });
  nav.hidden = true;
  put(whoEl);
  put(main, form);
  form.elements.key.focus();
}

async function signIn() {
  try {
    session.who = await get('/v1/whoami');
  } catch (err) {
    session.key = null;
    session.who = null;
    signInForm(`Sign-in failed: ${err.message}`);
    return;
  }
  nav.hidden = false;
  put(whoEl, h('span', { className: 'identity', textContent: `${session.who.name} · ${session.who.roles.join(', ')}` }),
    h('button', { type: 'button', className: 'link', textContent: 'Sign out', onclick: () => signOut() }));
  show();
}

// signOut forgets the key, and says why when the gateway refused it.
function signOut(why) {
  session.key = null;
  session.who = null;
  view = null;
  signInForm(why);
}

// show mounts the view the location's hash names.
function show() {
  if (!session.who) return;
  const [section, name] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const route = routes[section];
  if (!route) {
    location.replace('#/endpoints');
    return;
  }
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  view = name ? route[1](main, name) : route[0](main);
  document.title = `${name || section} · mlgate`;
  main.querySelector('h1')?.focus();
  poll();
}

// poll refreshes the shown view, unless a refresh is still running or
// the view asks to be read less often (every, in ms).
async function poll() {
  const shown = view;
  if (!shown || shown.busy) return;
  // A timer's tick may come a little early.
  if (performance.now() - (shown.last ?? -Infinity) < (shown.every ?? pollEvery) - 50) return;
  shown.busy = true;
  shown.last = performance.now();
  try {
    await shown.refresh();
    status.textContent = '';
    status.className = 'status';
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut(`Signed out: ${err.message}`);
      return;
    }
    if (shown === view) {
      status.className = 'status status-error';
      status.textContent = `Could not read the gateway: ${err.message}`;
    }
  } finally {
    shown.busy = false;
  }
}

window.addEventListener('hashchange', show);
changes.addEventListener('change', () => {
  if (view) view.last = undefined;
  poll();
});
setInterval(poll, pollEvery);
if (session.key !== null) signIn();
else signInForm();
