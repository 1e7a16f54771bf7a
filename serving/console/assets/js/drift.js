// Drift monitors: baseline against live histograms, drift metrics over
// recent windows, alerts, and labelled performance.

import { api, get, seg, session } from './api.js';
import { histogram, lines } from './charts.js';
import { badge, fmt, h, put, redraw, say, table } from './dom.js';

// list is the monitors overview.
export function list(main) {
  const body = h('div', { className: 'card' });
  put(main, h('h1', { tabIndex: -1, textContent: 'Drift monitors' }), body);
  const draw = redraw((monitors) => {
    put(body, monitors.length ? table('Monitors', [
      ['Monitor', (m) => h('a', { href: `#/drift/${seg(m.name)}`, textContent: m.name })],
      ['Watches', (m) => (m.endpoint ? `endpoint ${m.endpoint}` : `model ${m.model}`)],
      ['Baseline', (m) => m.baseline],
      ['Window', (m) => m.window],
      ['Status', (m) => h('span', {}, badge(m.status), m.error ? ` ${m.error}` : '')],
    ], monitors, (m) => ({ 'data-monitor': m.name })) : h('p', { className: 'muted', textContent: 'No drift monitors yet.' }));
  });
  return {
    async refresh() {
      draw((await get('/v1/monitors')).monitors);
    },
  };
}

const metricNames = {
  psi: 'PSI', ks_p: 'KS p-value (drift below the threshold)', js: 'Jensen–Shannon distance', chi2_p: 'χ² p-value (drift below the threshold)',
};

// series lists a window's features and predictions, each with its name as
// the charts show it.
const seriesOf = (w) => [...(w.features || []).map((f) => ({ ...f, label: f.name })), ...(w.predictions || []).map((p) => ({ ...p, label: `prediction ${p.name}` }))]
  .map((f) => ({ ...f, metrics: f.metrics || [] }));

function histograms(w) {
  const figs = seriesOf(w).filter((f) => f.histogram && f.histogram.labels.length).map((f) => {
    const verdict = f.metrics.map((m) => `${m.metric} ${fmt.sig(m.value)}${m.drifted ? ' (drifted)' : ''}`).join(', ');
    return h('figure', { className: 'chart-box', 'data-series': f.label },
      histogram(f.histogram, `${f.label}: baseline and live share of each bin`),
      h('figcaption', {}, h('strong', { textContent: f.label }), ' ', f.drifted ? badge('drifted', 'bad') : null,
        h('br'), `${fmt.int(f.count)} live, ${fmt.int(f.baseline)} baseline${verdict ? ` · ${verdict}` : ''}`));
  });
  if (!figs.length) return h('p', { className: 'muted', textContent: 'This window has no histograms.' });
  return h('div', {}, h('p', { className: 'legend' }, h('span', { className: 'swatch bar-baseline' }), ' baseline ',
    h('span', { className: 'swatch bar-live' }), ' live (share of each bin)'), h('div', { className: 'grid' }, figs));
}

function metricCharts(windows, thresholds) {
  const recent = windows.slice(-30);
  const xLabels = recent.map((w) => fmt.clock(w.end));
  const names = [...new Set(recent.flatMap((w) => seriesOf(w).map((f) => f.label)))];
  const metrics = [...new Set(recent.flatMap((w) => seriesOf(w).flatMap((f) => f.metrics.map((m) => m.metric))))];
  if (!metrics.length) return h('p', { className: 'muted', textContent: 'No window has been judged yet.' });
  return h('div', { className: 'grid' }, metrics.map((metric) => {
    const series = names.map((name) => ({
      name,
      values: recent.map((w) => seriesOf(w).find((f) => f.label === name)?.metrics.find((m) => m.metric === metric)?.value ?? null),
    }));
    const label = metricNames[metric] || metric;
    return h('figure', { className: 'chart-box', 'data-metric': metric },
      lines({ xLabels, series, threshold: thresholds[metric] }, `${label} per window`),
      h('figcaption', {}, h('strong', { textContent: label }), ` · threshold ${thresholds[metric] || 'off'}`,
        h('ul', { className: 'keys' }, series.map((se, k) => h('li', {}, h('span', { className: `swatch c${k % 6}` }), ` ${se.name}`)))));
  }));
}

function alerts(history) {
  const sent = history.filter((w) => w.alerted).reverse();
  if (!sent.length) return h('p', { className: 'muted', textContent: 'No alert sent.' });
  return h('ul', { className: 'alerts' }, sent.map((w) => h('li', {},
    `${fmt.time(w.start)} – ${fmt.clock(w.end)}: `,
    seriesOf(w).filter((f) => f.drifted).map((f) => `${f.label} (${f.metrics.filter((m) => m.drifted).map((m) => `${m.metric} ${fmt.sig(m.value)}`).join(', ')})`).join('; '))));
}

function performanceTable(rows) {
  if (!rows.length) return h('p', { className: 'muted', textContent: 'No labelled predictions yet (POST /v1/labels).' });
  return table('', [
    ['Endpoint', (p) => p.endpoint || '–'],
    ['Variant', (p) => p.variant || '–'],
    ['Model', (p) => `${p.model}/${p.version}`],
    ['Labelled', (p) => fmt.int(p.labelled)],
    ['Accuracy', (p) => fmt.pct(p.accuracy)],
    ['AUC', (p) => fmt.num(p.auc, 3)],
    ['MAE', (p) => fmt.sig(p.mae)],
    ['RMSE', (p) => fmt.sig(p.rmse)],
  ], rows, (p) => ({ 'data-variant': p.variant || '' }));
}

function runForm(name, msg, done) {
  const form = h('form', { className: 'run', 'aria-label': 'Judge a time range' },
    h('fieldset', {}, h('legend', { textContent: 'Judge a time range of the inference table' }),
      h('div', { className: 'field' }, h('label', { for: 'run-minutes', textContent: 'Last minutes' }),
        h('input', { id: 'run-minutes', name: 'minutes', type: 'number', min: 1, value: 60 })),
      h('button', { type: 'submit', textContent: 'Run' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const to = new Date();
    const from = new Date(to - Number(form.elements.minutes.value) * 60000);
    try {
      const w = await api('POST', `/v1/monitors/${seg(name)}/run`, { from: from.toISOString(), to: to.toISOString() });
      say(msg, `Judged ${fmt.int(w.samples)} predictions: ${w.drifted ? 'drifted' : 'no drift'}.`);
      done(w);
    } catch (err) {
      say(msg, `Not judged: ${err.message}`, true);
    }
  });
  return form;
}

// detail is one monitor's page.
export function detail(main, name) {
  const head = h('div');
  const hists = h('div');
  const charts = h('div');
  const sent = h('div');
  const perf = h('div');
  const msg = h('p', { className: 'msg' });
  const ran = h('div', { className: 'judged' });
  let shown = null;
  put(main,
    h('p', { className: 'crumbs' }, h('a', { href: '#/drift', textContent: 'Drift' }), ' / '),
    h('h1', { tabIndex: -1, textContent: name }),
    h('section', { className: 'card' }, head, session.can('data-scientist') ? runForm(name, msg, (w) => put(ran, h('h3', { textContent: 'Judged range' }), histograms(w))) : null, msg, ran),
    h('section', { className: 'card', 'aria-labelledby': 'hist-h' }, h('h2', { id: 'hist-h', textContent: 'Baseline and live, last window' }), hists),
    h('section', { className: 'card', 'aria-labelledby': 'metrics-h' }, h('h2', { id: 'metrics-h', textContent: 'Drift over recent windows' }), charts),
    h('section', { className: 'card', 'aria-labelledby': 'alerts-h' }, h('h2', { id: 'alerts-h', textContent: 'Alerts sent' }), sent),
    h('section', { className: 'card', 'aria-labelledby': 'perf-h' }, h('h2', { id: 'perf-h', textContent: 'Labelled performance per variant' }), perf));
  // The labelled performance reads every label and the rows of the
  // inference table the monitor watches, so it is read every perfEvery ms
  // only; the rest of the report, every 2 s.
  const perfEvery = 30000;
  let perfAt = -Infinity;
  return {
    every: 2000,
    async refresh() {
      const measure = performance.now() - perfAt >= perfEvery;
      const r = await get(`/v1/monitors/${seg(name)}/report${measure ? '' : '?performance=false'}`);
      if (measure) perfAt = performance.now();
      const s = r.spec;
      const history = r.history || [];
      put(head,
        h('p', {}, badge(r.status), ` watches ${s.endpoint ? `endpoint ${s.endpoint}` : `model ${s.model}`}`,
          r.model?.name ? ` (${r.model.name}/${r.model.version})` : '',
          ` · baseline ${s.baseline} · window ${s.window} · min ${s.min_samples} samples · last alert ${fmt.time(r.last_alert)}`),
        r.error ? h('p', { className: 'msg msg-error', textContent: r.error }) : null,
        r.current?.start ? h('p', { className: 'muted', textContent: `Current window since ${fmt.clock(r.current.start)}: ${fmt.int(r.current.samples)} samples` }) : null);
      if (measure) put(perf, performanceTable(r.performance || []));
      const last = history[history.length - 1];
      const key = last ? `${history.length}/${last.end}` : '';
      if (key === shown) return;
      shown = key;
      put(hists, last ? [h('p', { className: 'muted', textContent: `${fmt.time(last.start)} – ${fmt.clock(last.end)}, ${fmt.int(last.samples)} samples` }), histograms(last)]
        : h('p', { className: 'muted', textContent: 'No window has closed yet.' }));
      put(charts, metricCharts(history, s.thresholds));
      put(sent, alerts(history));
    },
  };
}
