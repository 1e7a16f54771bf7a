// The endpoints overview: live figures of every variant of every endpoint,
// and the gateway's health.

import { get, seg } from './api.js';
import { shareBar } from './charts.js';
import { badge, fmt, h, keep, put, syncRows } from './dom.js';

// Stats are cumulative per revision, so requests/s come from the counts of
// the polls of the last rateWindow ms.
const rateWindow = 3000;
const samples = new Map(); // endpoint → {revision, points: [{t, counts}]}

function rates(e) {
  const now = performance.now();
  let s = samples.get(e.name);
  if (!s || s.revision !== e.revision) {
    s = { revision: e.revision, points: [] };
    samples.set(e.name, s);
  }
  const counts = Object.fromEntries(e.stats.variants.map((v) => [v.name, v.requests]));
  s.points.push({ t: now, counts });
  while (s.points.length > 2 && now - s.points[0].t > rateWindow) s.points.shift();
  const first = s.points[0];
  const dt = (now - first.t) / 1000;
  return (name) => (dt > 0.5 ? ((counts[name] || 0) - (first.counts[name] || 0)) / dt : null);
}

const variantColumns = (e, rate) => {
  const models = Object.fromEntries(e.policy.variants.map((v) => [v.name, v.model]));
  const total = e.policy.variants.reduce((a, v) => a + v.weight, 0) || 1;
  return [
    ['variant', (v) => v.name],
    ['model', (v) => models[v.name] || ''],
    ['target', (v) => fmt.pct(v.weight / total)],
    ['observed', (v) => fmt.pct(v.share)],
    ['share', (v) => shareBar(v.share || 0, v.weight / total)],
    ['rps', (v) => fmt.num(rate(v.name), 1)],
    ['requests', (v) => fmt.int(v.requests)],
    ['errors', (v) => fmt.int(v.errors)],
    ['error-rate', (v) => fmt.pct(v.error_rate, 2)],
    ['p50', (v) => fmt.ms(v.p50_ms)],
    ['p99', (v) => fmt.ms(v.p99_ms)],
  ];
};

const variantHeads = ['Variant', 'Model', 'Target share', 'Observed share', 'Observed vs target', 'Requests/s',
  'Requests', 'Errors', 'Error rate', 'p50', 'p99'];

// variantsTable is a live table of an endpoint's variants; update it with
// each poll's endpoint.
function variantsTable(name) {
  const tbody = h('tbody');
  const el = h('table', { className: 'variants', 'data-endpoint': name },
    h('caption', { className: 'sr-only', textContent: `Variants of ${name}` }),
    h('thead', {}, h('tr', {}, variantHeads.map((t) => h('th', { scope: 'col', textContent: t })))),
    tbody);
  return {
    el,
    update(e) {
      syncRows(tbody, e.stats.variants, (v) => v.name, variantColumns(e, rates(e)));
    },
  };
}

function srm(stats) {
  if (stats.srm) return badge(`SRM: sample ratio mismatch (p = ${fmt.sig(stats.srm_p_value)})`, 'bad');
  return h('span', { className: 'muted', textContent: `no SRM (p = ${fmt.sig(stats.srm_p_value)})` });
}

function shadowLine(e) {
  const sh = e.policy.shadow;
  if (!sh) return null;
  const st = e.stats.shadow;
  const compared = st.agree + st.disagree;
  return h('p', { className: 'shadow' },
    `Shadow ${sh.model} (${fmt.num(sh.percent, 0)}% copied): `,
    compared ? `agreement ${fmt.pct(st.agreement_rate)} of ${fmt.int(compared)} compared` : 'no class labels compared',
    st.diffs ? `, mean |difference| ${fmt.sig(st.mean_abs_diff)} over ${fmt.int(st.diffs)}` : '',
    `; ${fmt.int(st.dropped)} dropped, ${fmt.int(st.failed)} failed`);
}

function canaryBadge(c) {
  if (!c) return null;
  return badge(`canary ${c.state}${c.state === 'running' || c.state === 'paused' ? ` · step ${c.step + 1}/${c.spec.steps.length}` : ''}`, c.state);
}

// summary is the live part of an endpoint shown in the list and on its
// page.
export function summary(name) {
  const meta = h('p', { className: 'meta' });
  const shadow = h('div');
  const vt = variantsTable(name);
  return {
    el: h('div', {}, meta, vt.el, shadow),
    update(e) {
      put(meta, `revision ${e.revision} · `, srm(e.stats), ' ', canaryBadge(e.canary),
        e.partial ? h('span', { className: 'warn', textContent: ` ${e.partial}` }) : null);
      vt.update(e);
      put(shadow, shadowLine(e));
    },
  };
}

function tablesHealth(t) {
  if (!t.enabled) return h('span', { className: 'muted', textContent: 'off' });
  if (t.healthy) return badge('healthy', 'ok');
  return h('p', {}, badge('unhealthy', 'bad'), ` ${t.error}`);
}

function statusPanel() {
  const el = h('section', { className: 'card health', 'aria-labelledby': 'health-h' });
  return {
    el,
    update(st) {
      put(el,
        h('h2', { id: 'health-h', textContent: 'Health' }),
        h('div', { className: 'row' },
          h('div', {}, h('h3', { textContent: 'Circuit breakers' }),
            st.breakers.length ? h('ul', { className: 'plain' }, st.breakers.map((b) => h('li', { 'data-breaker': b.name }, badge(b.state), ` ${b.name}`)))
              : h('p', { className: 'muted', textContent: 'none' })),
          h('div', {}, h('h3', { textContent: 'Queues' }),
            h('ul', { className: 'plain' }, st.queues.map((q) => h('li', { 'data-queue': q.name },
              h('meter', { min: 0, max: q.capacity, value: q.depth, high: q.capacity * 0.8, 'aria-label': `${q.name} queue depth` }),
              ` ${q.name}: ${fmt.int(q.depth)} / ${fmt.int(q.capacity)}`)))),
          h('div', {}, h('h3', { textContent: 'Inference tables' }),
            tablesHealth(st.tables))));
    },
  };
}

// list is the endpoints overview.
export function list(main) {
  const health = statusPanel();
  const cards = h('div', { className: 'cards' });
  const none = h('p', { className: 'muted', textContent: 'No endpoints yet: PUT /v1/endpoints/{name} makes one.' });
  const parts = new Map();
  put(main, h('h1', { tabIndex: -1, textContent: 'Endpoints' }), health.el, cards);
  return {
    async refresh() {
      const [eps, st] = await Promise.all([get('/v1/endpoints'), get('/v1/status')]);
      health.update(st);
      for (const e of eps.endpoints) {
        let p = parts.get(e.name);
        if (!p) {
          p = summary(e.name);
          p.card = h('section', { className: 'card', 'data-endpoint': e.name, 'aria-label': `Endpoint ${e.name}` },
            h('h2', {}, h('a', { href: `#/endpoints/${seg(e.name)}`, textContent: e.name })), p.el);
          parts.set(e.name, p);
        }
        p.update(e);
      }
      const names = new Set(eps.endpoints.map((e) => e.name));
      for (const n of parts.keys()) {
        if (!names.has(n)) parts.delete(n);
      }
      keep(cards, eps.endpoints.length ? eps.endpoints.map((e) => parts.get(e.name).card) : [none]);
    },
  };
}
