// One endpoint: its live figures, its weights, its canary and the steps of
// its canaries, its revisions and audit trail.

import { api, auditTrail, changed, get, seg, session } from './api.js';
import { auditTable, changes } from './audit.js';
import { badge, confirm, editing, field, fmt, h, put, redraw, refill, say, table } from './dom.js';
import { summary } from './endpoints.js';

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
  // The audit trail is read at every poll: an event may be recorded just
  // after the revision it tells of.
  const drawAudit = redraw((events) => put(audit, auditTable(events)));
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
      const [e, events] = await Promise.all([get(`/v1/endpoints/${seg(name)}`), auditTrail(`endpoint=${seg(name)}`)]);
      live.update(e);
      drawAudit(events);
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
        const revs = (await get(`/v1/endpoints/${seg(name)}/history`)).revisions;
        put(steps, timeline(revs));
        put(revisions, table('', [
          ['Revision', (r) => String(r.revision)],
          ['Time', (r) => fmt.time(r.time)],
          ['Actor', (r) => r.actor],
          ['Action', (r) => r.action],
          ['What changed', (r) => changes(revs[revs.indexOf(r) - 1]?.policy, r.policy)],
        ], [...revs].reverse(), (r) => ({ 'data-revision': r.revision })));
        shown.revision = e.revision;
      }
    },
  };
}
