// Charts drawn as inline SVG: histograms, lines over time, share bars.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

const title = (text) => s('title', {}, text);
const pct = (v) => `${(v * 100).toFixed(1)}%`;

function shares(counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total ? c / total : 0));
}

// yAxis draws three gridlines with their values from 0 to max.
function yAxis(svg, box, max, format) {
  for (const f of [0, 0.5, 1]) {
    const y = box.t + box.h * (1 - f);
    svg.append(
      s('line', { x1: box.l, x2: box.l + box.w, y1: y, y2: y, class: 'gridline' }),
      s('text', { x: box.l - 4, y: y + 3, class: 'tick', 'text-anchor': 'end' }, format(max * f)),
    );
  }
}

// histogram draws baseline and live shares of each bin side by side. A
// numeric histogram's axis shows its edges between the bins; a categorical
// one's shows each bin's label.
export function histogram({ labels, edges, baseline, live }, label) {
  const W = 380;
  const H = 200;
  const box = { l: 40, t: 8, w: W - 52, h: H - 8 - 48 };
  const b = shares(baseline);
  const l = shares(live);
  const max = Math.max(0.05, ...b, ...l);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart histogram', role: 'img', 'aria-label': label });
  svg.append(title(label));
  yAxis(svg, box, max, pct);
  const bw = box.w / labels.length;
  labels.forEach((name, i) => {
    const x = box.l + i * bw;
    [[b, baseline, 'baseline', 0.1], [l, live, 'live', 0.5]].forEach(([sh, counts, cls, off]) => {
      const hgt = (sh[i] / max) * box.h;
      svg.append(s('rect', {
        x: x + bw * off, y: box.t + box.h - hgt, width: Math.max(bw * 0.4, 1), height: hgt, class: `bar bar-${cls}`,
      }, title(`${name}: ${cls} ${pct(sh[i])} (${counts[i]})`)));
    });
  });
  const ticks = edges && edges.length ? edges.map((e, i) => [box.l + (i + 1) * bw, Number(e.toPrecision(3)).toString()])
    : labels.map((name, i) => [box.l + (i + 0.5) * bw, name.length > 12 ? `${name.slice(0, 11)}…` : name]);
  const y = box.t + box.h + 10;
  for (const [x, text] of ticks) {
    svg.append(s('text', { x, y, class: 'tick', 'text-anchor': 'end', transform: `rotate(-40 ${x} ${y})` }, text));
  }
  return svg;
}

// lines draws one line per series over the same x labels, with a dashed
// threshold; series are {name, values} with null for a missing point.
export function lines({ xLabels, series, threshold }, label) {
  const W = 380;
  const H = 170;
  const box = { l: 46, t: 8, w: W - 56, h: H - 8 - 26 };
  const all = series.flatMap((se) => se.values).filter((v) => v !== null && Number.isFinite(v));
  const max = Math.max(threshold || 0, ...all, 1e-9) * 1.1;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart lines', role: 'img', 'aria-label': label });
  svg.append(title(label));
  yAxis(svg, box, max, (v) => (v >= 0.01 || v === 0 ? v.toFixed(2) : v.toExponential(0)));
  const n = xLabels.length;
  const xOf = (i) => box.l + (n > 1 ? (i / (n - 1)) * box.w : box.w / 2);
  const yOf = (v) => box.t + box.h * (1 - v / max);
  if (threshold) {
    svg.append(s('line', { x1: box.l, x2: box.l + box.w, y1: yOf(threshold), y2: yOf(threshold), class: 'threshold' },
      title(`threshold ${threshold}`)));
  }
  series.forEach((se, k) => {
    let d = '';
    se.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      d += `${d ? 'L' : 'M'}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`;
      svg.append(s('circle', { cx: xOf(i), cy: yOf(v), r: 2.5, class: `dot c${k % 6}` }, title(`${se.name} ${xLabels[i]}: ${v}`)));
    });
    if (d) svg.insertBefore(s('path', { d, class: `line c${k % 6}` }), svg.querySelector('circle'));
  });
  const ends = n > 1 ? [0, n - 1] : [0];
  ends.filter((i) => i < n).forEach((i) => {
    svg.append(s('text', { x: xOf(i), y: H - 6, class: 'tick', 'text-anchor': i ? 'end' : 'start' }, xLabels[i]));
  });
  return svg;
}

// shareBar shows the observed share of traffic as a bar, and the target
// share as a mark on it.
export function shareBar(observed, target) {
  const W = 90;
  const svg = s('svg', { viewBox: `0 0 ${W} 10`, class: 'sharebar', role: 'img', 'aria-label': `observed ${pct(observed)}, target ${pct(target)}` });
  svg.append(
    s('rect', { x: 0, y: 1, width: W, height: 8, class: 'track' }),
    s('rect', { x: 0, y: 1, width: W * Math.min(observed, 1), height: 8, class: 'observed' }),
    s('line', { x1: W * target, x2: W * target, y1: 0, y2: 10, class: 'target' }),
  );
  return svg;
}
