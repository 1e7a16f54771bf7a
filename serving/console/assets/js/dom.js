// Small helpers to build and update the page.

// Props that h sets as attributes, having no writable property.
const attributes = new Set(['for', 'role', 'list']);

// h builds an element: props are properties (className, textContent, ...)
// or, for names with a dash and those in attributes, attributes (false
// leaves one out); on* props add listeners.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (!k.includes('-') && !attributes.has(k)) el[k] = v;
    else if (v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// put replaces el's children.
export function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// keep makes nodes el's children, touching el only if they are not
// already, so that a focused child keeps the focus.
export function keep(el, nodes) {
  if (nodes.length !== el.children.length || nodes.some((n, i) => el.children[i] !== n)) put(el, nodes);
}

// redraw returns a function that calls draw(data) only when data differs
// from the last it drew, so that a poll rebuilds nothing the user may have
// focused unless it changed.
export function redraw(draw) {
  let last = '';
  return (data) => {
    const now = JSON.stringify(data);
    if (now !== last) {
      last = now;
      draw(data);
    }
  };
}

// editing says whether the user is typing in a field of el.
export const editing = (el) => el.contains(document.activeElement) && ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName);

// refill replaces el's children; if the focus was in el, it moves to the
// first button of what replaces them.
export function refill(el, ...children) {
  const had = el.contains(document.activeElement);
  put(el, ...children);
  if (had) el.querySelector('button')?.focus();
}

// field is a labelled input.
export function field(label, props) {
  const id = props.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  return h('div', { className: 'field' }, h('label', { for: id, textContent: label }), h('input', { ...props, id }));
}

// table builds a table: columns are [heading, cell(row) → string | Node].
export function table(caption, columns, rows, rowProps = () => ({})) {
  return h('table', {},
    caption ? h('caption', { textContent: caption }) : null,
    h('thead', {}, h('tr', {}, columns.map(([head]) => h('th', { scope: 'col', textContent: head })))),
    h('tbody', {}, rows.map((r) => h('tr', rowProps(r), columns.map(([, cell]) => td(cell(r)))))));
}

function td(v) {
  return v instanceof Node ? h('td', {}, v) : h('td', { textContent: v ?? '' });
}

// syncRows keeps tbody's rows, one per item by key, updating their cells
// in place so nothing the user has focused is rebuilt.
export function syncRows(tbody, items, key, columns) {
  const old = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
  const rows = items.map((it) => {
    let tr = old.get(key(it));
    if (!tr) {
      tr = h('tr', { 'data-key': key(it) }, columns.map(([cls]) => h('td', { className: cls })));
    }
    columns.forEach(([, cell], i) => {
      const v = cell(it);
      const c = tr.cells[i];
      if (v instanceof Node) put(c, v);
      else if (c.textContent !== String(v ?? '')) c.textContent = v ?? '';
    });
    return tr;
  });
  rows.forEach((tr, i) => {
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
  });
  while (tbody.rows.length > rows.length) tbody.deleteRow(-1);
}

// badge is a short status word, styled by its kind.
export const badge = (text, kind = text) => h('span', { className: `badge badge-${String(kind).toLowerCase()}`, textContent: text });

// message is a line telling the outcome of an action: role=alert for errors.
export function say(el, text, error = false) {
  el.className = error ? 'msg msg-error' : 'msg msg-ok';
  el.setAttribute('role', error ? 'alert' : 'status');
  el.textContent = text;
}

const two = (n) => String(n).padStart(2, '0');
const day = (d) => `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
const clock = (d) => `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;

// Numbers and times as the console writes them, times in the browser's
// time zone.
export const fmt = {
  num: (v, digits = 2) => (v === undefined || v === null || Number.isNaN(v) ? '–' : Number(v).toFixed(digits)),
  int: (v) => (v === undefined || v === null ? '–' : Math.round(v).toLocaleString('en')),
  pct: (v, digits = 1) => (v === undefined || v === null || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(digits)}%`),
  ms: (v) => (v ? `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms` : '–'),
  time: (t) => (t ? `${day(new Date(t))} ${clock(new Date(t))}` : '–'),
  clock: (t) => (t ? clock(new Date(t)) : '–'),
  sig: (v) => {
    if (v === undefined || v === null) return '–';
    if (Number.isInteger(v)) return v.toLocaleString('en');
    return Math.abs(v) >= 0.01 ? v.toFixed(3) : v.toExponential(2);
  },
};

// confirm asks the user, in the page's dialog, and resolves to true if
// they confirm; Escape or Cancel (focused first) declines.
export function confirm(text, ok = 'Confirm') {
  const dlg = document.getElementById('confirm');
  const okBtn = document.getElementById('confirm-ok');
  const cancelBtn = document.getElementById('confirm-cancel');
  document.getElementById('confirm-text').textContent = text;
  okBtn.textContent = ok;
  okBtn.onclick = () => dlg.close('ok');
  cancelBtn.onclick = () => dlg.close('cancel');
  dlg.returnValue = '';
  dlg.showModal();
  cancelBtn.focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}
