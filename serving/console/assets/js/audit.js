// The audit trail and the policy changes it records.

import { fmt, h, table } from './dom.js';

// changes says what a revision changed in the policy before it.
export function changes(prev, cur) {
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
