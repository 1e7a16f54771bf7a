// The endpoints: live figures of every variant, and one endpoint's traffic,
// canary and history.

import { api, auditTrail, changed, get, seg, session } from './api.js';
import { shareBar } from './charts.js';
import { badge, confirm, editing, field, fmt, h, keep, put, refill, say, syncRows, table } from './dom.js';

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
function summary(name) {
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

// changes says what a revision changed in the policy before it.
function changes(prev, cur) {
  if (!prev) return `created: ${cur.variants.map((v) => `${v.name} ${v.model} ${v.weight}`).join(', ')}`;
  const out = [];
  const before = new Map(prev.variants.map((v) => [v.name, v]));
  for (const v of cur.variants) {
    const b = before.get(v.name);
    if (!b) out.push(`added ${v.name} (${v.model}, ${v.weight})`);
    else {
      if (b.weight !== v.weight) out.push(`${v.name} weight ${b.weight} → ${v.weight}`);
      if (b.model !== v.model) out.push(`${v.name} model ${b.model} → ${v.model}`);
    }
    before.delete(v.name);
  }
  for (const n of before.keys()) out.push(`removed ${n}`);
  const sh = (p) => (p.shadow ? `${p.shadow.model} ${p.shadow.percent}%` : 'none');
  if (sh(prev) !== sh(cur)) out.push(`shadow ${sh(prev)} → ${sh(cur)}`);
  if (JSON.stringify(prev.sticky) !== JSON.stringify(cur.sticky)) out.push('sticky key changed');
  if (JSON.stringify(prev.table) !== JSON.stringify(cur.table)) out.push('table settings changed');
  return out.join('; ') || 'no policy change';
}

function figures(f) {
  if (!f) return null;
  return h('dl', { className: 'figures' }, Object.keys(f).sort().flatMap((k) => [h('dt', { textContent: k.replaceAll('_', ' ') }), h('dd', { textContent: fmt.sig(f[k]) })]));
}

// timeline lists the endpoint's canaries, newest first, each with its
// steps: when, who, the weight, and the figures and reason of each decision.
function timeline(revisions) {
  const runs = [];
  for (const r of revisions.filter((rev) => rev.canary && rev.action.startsWith('canary'))) {
    if (r.action === 'canary_start' || !runs.length) runs.unshift([]);
    runs[0].push(r);
  }
  if (!runs.length) return h('p', { className: 'muted', textContent: 'No canary has run on this endpoint.' });
  return runs.map((run) => {
    const last = run[run.length - 1].canary;
    const spec = last.spec;
    return h('section', { className: 'run', 'aria-label': `Canary of ${spec.model}` },
      h('h4', {}, `Canary of ${spec.model}: steps ${spec.steps.join(', ')}%, ${spec.interval} each · `, badge(last.state)),
      h('ol', { className: 'timeline' }, run.map((r) => {
        const c = r.canary;
        return h('li', { 'data-action': r.action },
          h('p', {}, h('strong', { textContent: r.action.replace('canary_', '') }), ` · ${fmt.time(r.time)} · ${r.actor} · `,
            `step ${c.step + 1} of ${c.spec.steps.length} (${c.spec.steps[c.step]}%)`),
          c.reason ? h('p', { className: c.state === 'rolled_back' ? 'reason bad' : 'reason', textContent: `Reason: ${c.reason}` }) : null,
          figures(c.figures));
      })));
  });
}

function weightsForm(e, msg) {
  const inputs = e.policy.variants.map((v) => field(`${v.name} (${v.model})`, {
    type: 'number', min: 0, step: 1, value: v.weight, name: v.name, required: true, 'data-variant': v.name,
  }));
  const form = h('form', { className: 'weights', 'aria-label': 'Traffic weights' },
    h('fieldset', {}, h('legend', { textContent: 'Traffic weights' }), inputs,
      h('button', { type: 'submit', className: 'primary', textContent: 'Change weights…' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const weights = Object.fromEntries([...form.querySelectorAll('input')].map((i) => [i.name, Number(i.value)]));
    const text = Object.entries(weights).map(([n, w]) => `${n} ${w}`).join(', ');
    if (!(await confirm(`Set the weights of ${e.name} to ${text}?`, 'Change weights'))) return;
    try {
      const out = await api('PATCH', `/v1/endpoints/${seg(e.name)}/traffic`, { weights });
      say(msg, `Weights changed: revision ${out.revision}.`);
      changed();
    } catch (err) {
      say(msg, `Weights not changed: ${err.message}`, true);
    }
  });
  return form;
}

function canaryStartForm(e, msg) {
  const form = h('form', { className: 'canary-start', 'aria-label': 'Start a canary' },
    h('fieldset', {}, h('legend', { textContent: 'Start a canary' }),
      field('Model (name/version or name@alias)', { name: 'model', required: true, placeholder: 'churn/3' }),
      field('Steps (per cent, ending at 100)', { name: 'steps', value: '10, 50, 100', required: true }),
      field('Interval per step', { name: 'interval', value: '5m', required: true }),
      field('Min requests per step', { name: 'min_requests', type: 'number', min: 0, value: 100 }),
      field('Max error rate (0–1)', { name: 'max_error_rate', type: 'number', min: 0, max: 1, step: 'any', value: 0.05 }),
      field('Max p99 latency (ms, 0: off)', { name: 'max_p99_latency_ms', type: 'number', min: 0, step: 'any', value: 0 }),
      field('Max prediction shift (0: off)', { name: 'max_prediction_shift', type: 'number', min: 0, step: 'any', value: 0 }),
      field('Alias to move on promotion', { name: 'promote_alias', value: 'champion' }),
      h('button', { type: 'submit', className: 'primary', textContent: 'Start canary…' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = (n) => form.elements[n].value.trim();
    const spec = {
      model: v('model'),
      steps: v('steps').split(/[\s,]+/).filter(Boolean).map(Number),
      interval: v('interval'),
      analysis: {
        min_requests: Number(v('min_requests')),
        max_error_rate: Number(v('max_error_rate')),
        max_p99_latency_ms: Number(v('max_p99_latency_ms')),
        max_prediction_shift: Number(v('max_prediction_shift')),
      },
      promote_alias: v('promote_alias'),
    };
    if (!(await confirm(`Start a canary of ${spec.model} on ${e.name}: steps ${spec.steps.join(', ')}%, ${spec.interval} each?`, 'Start canary'))) return;
    try {
      await api('POST', `/v1/endpoints/${seg(e.name)}/canary`, spec);
      say(msg, 'Canary started.');
      changed();
    } catch (err) {
      say(msg, `Canary not started: ${err.message}`, true);
    }
  });
  return form;
}

function canaryCommands(e, msg) {
  const c = e.canary;
  const command = (cmd, label, ask) => h('button', {
    type: 'button', textContent: label, 'data-command': cmd,
    async onclick() {
      if (ask && !(await confirm(ask, label))) return;
      try {
        await api('POST', `/v1/endpoints/${seg(e.name)}/canary/${cmd}`);
        say(msg, `Canary: ${cmd} done.`);
        changed();
      } catch (err) {
        say(msg, `Canary ${cmd} failed: ${err.message}`, true);
      }
    },
  });
  return h('div', { className: 'canary-commands' },
    h('div', { className: 'buttons', role: 'group', 'aria-label': 'Canary commands' },
      c.state === 'running' ? command('pause', 'Pause') : command('resume', 'Resume'),
      command('promote', 'Promote…', `Promote ${c.spec.model} on ${e.name} now, skipping the remaining steps?`),
      command('abort', 'Abort…', `Abort the canary on ${e.name} and restore its weights from before?`)));
}

function canaryNow(e) {
  const c = e.canary;
  if (!c) return h('p', { className: 'muted', textContent: 'No canary.' });
  return h('div', { className: 'canary-now' },
    h('p', {}, badge(c.state), ` ${c.spec.model}: step ${c.step + 1} of ${c.spec.steps.length} (${c.spec.steps[c.step]}%), `,
      `${c.spec.interval} each, since ${fmt.clock(c.step_started_at)}`),
    c.reason ? h('p', { className: 'reason', textContent: `Last decision: ${c.reason}` }) : null,
    figures(c.figures));
}

// detail is one endpoint's page.
export function detail(main, name) {
  const live = summary(name);
  const controls = h('div', { className: 'controls' });
  const weightsMsg = h('p', { className: 'msg' });
  const canary = h('div');
  const canaryControls = h('div');
  const canaryMsg = h('p', { className: 'msg' });
  const steps = h('div');
  const revisions = h('div');
  const audit = h('div');
  const shown = { revision: -1, form: -1, canary: null };
  const sre = session.can('sre');
  put(main,
    h('p', { className: 'crumbs' }, h('a', { href: '#/endpoints', textContent: 'Endpoints' }), ' / '),
    h('h1', { tabIndex: -1, textContent: name }),
    h('section', { className: 'card', 'aria-labelledby': 'live-h' }, h('h2', { id: 'live-h', textContent: 'Live traffic' }), live.el, controls, weightsMsg),
    h('section', { className: 'card', 'aria-labelledby': 'canary-h' }, h('h2', { id: 'canary-h', textContent: 'Canary' }), canary, canaryControls, canaryMsg,
      h('h3', { textContent: 'Step timeline' }), steps),
    h('section', { className: 'card', 'aria-labelledby': 'rev-h' }, h('h2', { id: 'rev-h', textContent: 'Revision history' }), revisions),
    h('section', { className: 'card', 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h', textContent: 'Audit trail' }), audit));
  return {
    async refresh() {
      const e = await get(`/v1/endpoints/${seg(name)}`);
      live.update(e);
      put(canary, canaryNow(e));
      const active = e.canary && (e.canary.state === 'running' || e.canary.state === 'paused');
      const canaryKey = e.canary ? `${e.canary.state} ${e.canary.spec.model}` : '';
      if (sre && e.revision !== shown.form && !editing(controls)) {
        refill(controls, weightsForm(e, weightsMsg));
        shown.form = e.revision;
      }
      if (sre && canaryKey !== shown.canary && !editing(canaryControls)) {
        refill(canaryControls, active ? canaryCommands(e, canaryMsg) : canaryStartForm(e, canaryMsg));
        shown.canary = canaryKey;
      }
      if (e.revision !== shown.revision) {
        const [hist, events] = await Promise.all([get(`/v1/endpoints/${seg(name)}/history`), auditTrail(`endpoint=${seg(name)}`)]);
        const revs = hist.revisions;
        put(steps, timeline(revs));
        put(revisions, table('', [
          ['Revision', (r) => String(r.revision)],
          ['Time', (r) => fmt.time(r.time)],
          ['Actor', (r) => r.actor],
          ['Action', (r) => r.action],
          ['What changed', (r) => changes(revs[revs.indexOf(r) - 1]?.policy, r.policy)],
        ], [...revs].reverse(), (r) => ({ 'data-revision': r.revision })));
        put(audit, auditTable(events));
        shown.revision = e.revision;
      }
    },
  };
}

// auditTable lists audit events, newest first.
export function auditTable(events) {
  if (!events.length) return h('p', { className: 'muted', textContent: 'No events.' });
  return table('', [
    ['#', (ev) => String(ev.seq)],
    ['Time', (ev) => fmt.time(ev.time)],
    ['Actor', (ev) => ev.actor],
    ['Action', (ev) => ev.action],
    ['Subject', (ev) => [ev.endpoint, ev.model && `${ev.model}${ev.version ? `/${ev.version}` : ''}`, ev.view].filter(Boolean).join(' ')],
    ['Change', auditChange],
  ], events, (ev) => ({ 'data-seq': ev.seq, 'data-action': ev.action }));
}

// auditChange says what an audit event changed, from its before and after.
function auditChange(ev) {
  const a = ev.after || {};
  const b = ev.before || {};
  if (a.alias) return `${a.alias}: ${b.version ?? 'none'} → ${a.version}`;
  if (b.alias) return `${b.alias} removed (was ${b.version})`;
  if (a.key) return `${a.key} = ${a.value}`;
  if (a.policy) return changes(b.policy, a.policy);
  return '';
}
