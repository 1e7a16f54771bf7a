// The model registry: models, their versions, aliases and audit trail.

import { api, auditTrail, changed, get, seg, session } from './api.js';
import { auditTable } from './audit.js';
import { badge, confirm, editing, field, fmt, h, put, redraw, say, table } from './dom.js';

// list is the models overview.
export function list(main) {
  const body = h('div', { className: 'card' });
  put(main, h('h1', { tabIndex: -1, textContent: 'Models' }), body);
  const draw = redraw((models) => {
    put(body, models.length ? table('Registered models', [
      ['Model', (m) => h('a', { href: `#/models/${seg(m.name)}`, textContent: m.name })],
      ['Versions', (m) => String(m.versions)],
      ['Latest', (m) => String(m.latest_version)],
      ['Aliases', (m) => Object.entries(m.aliases).map(([a, v]) => `${a} → ${v}`).join(', ')],
      ['Updated', (m) => fmt.time(m.updated_at)],
    ], models, (m) => ({ 'data-model': m.name })) : h('p', { className: 'muted', textContent: 'No models yet.' }));
  });
  return {
    async refresh() {
      draw((await get('/v1/models')).models);
    },
  };
}

const lineage = (l) => [l.data && `data ${l.data}`, l.code && `code ${l.code}`, l.run_id && `run ${l.run_id}`].filter(Boolean).join(' · ');

function aliasForm(m, msg) {
  const aliases = Object.keys(m.aliases);
  const form = h('form', { className: 'alias', 'aria-label': 'Move an alias' },
    h('fieldset', {}, h('legend', { textContent: 'Move an alias' }),
      field('Alias', { name: 'alias', required: true, value: aliases[0] || 'champion', list: 'alias-names' }),
      h('datalist', { id: 'alias-names' }, aliases.map((a) => h('option', { value: a }))),
      h('div', { className: 'field' }, h('label', { for: 'alias-version', textContent: 'Version' }),
        h('select', { id: 'alias-version', name: 'version' }, [...m.versions].reverse().map((v) =>
          h('option', { value: v.version, textContent: `${v.version} (${v.status})` })))),
      h('button', { type: 'submit', className: 'primary', textContent: 'Move alias…' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const alias = form.elements.alias.value.trim();
    const version = Number(form.elements.version.value);
    if (!(await confirm(`Point ${m.name}@${alias} at version ${version}? Every endpoint that serves ${m.name}@${alias} follows it.`, 'Move alias'))) return;
    try {
      await api('PUT', `/v1/models/${seg(m.name)}/aliases/${seg(alias)}`, { version });
      say(msg, `${m.name}@${alias} now points at version ${version}.`);
      changed();
    } catch (err) {
      say(msg, `Alias not moved: ${err.message}`, true);
    }
  });
  return form;
}

// detail is one model's page.
export function detail(main, name) {
  const versions = h('div');
  const controls = h('div');
  const msg = h('p', { className: 'msg' });
  const audit = h('div');
  let shown = null;
  put(main,
    h('p', { className: 'crumbs' }, h('a', { href: '#/models', textContent: 'Models' }), ' / '),
    h('h1', { tabIndex: -1, textContent: name }),
    h('section', { className: 'card', 'aria-labelledby': 'versions-h' }, h('h2', { id: 'versions-h', textContent: 'Versions' }), versions, controls, msg),
    h('section', { className: 'card', 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h', textContent: 'Audit trail' }), audit));
  return {
    async refresh() {
      const m = await get(`/v1/models/${seg(name)}`);
      const state = JSON.stringify([m.updated_at, m.aliases, m.versions.map((v) => v.status)]);
      if (state === shown) return;
      put(versions, table('', [
        ['Version', (v) => String(v.version)],
        ['Status', (v) => badge(v.status)],
        ['Aliases', (v) => (v.aliases || []).join(', ')],
        ['Created', (v) => `${fmt.time(v.created_at)} by ${v.created_by}`],
        ['Description', (v) => v.description || ''],
        ['Lineage', (v) => lineage(v.lineage || {})],
        ['Tags', (v) => Object.entries(v.tags || {}).filter(([k]) => k !== 'validation_status').map(([k, t]) => `${k}=${t}`).join(', ')],
        ['Inputs → outputs', (v) => `${v.signature.inputs.map((i) => i.name).join(', ')} → ${v.signature.outputs.map((o) => o.name).join(', ')}`],
        ['SHA-256', (v) => h('code', { title: v.sha256, textContent: v.sha256.slice(0, 12) })],
      ], [...m.versions].reverse(), (v) => ({ 'data-version': v.version })));
      if (session.can('sre') && !editing(controls)) put(controls, aliasForm(m, msg));
      put(audit, auditTable(await auditTrail(`model=${seg(name)}`)));
      shown = state;
    },
  };
}
