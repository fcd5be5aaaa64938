// The time line: one lane per service, entry or group (the most recently active ones), one dot per event,
// coloured by kind. uPlot (its ESM build, served from its npm package) draws it.
import uPlot from '/vendor/uPlot.esm.js';

const MAX_LANES = 14;
const KINDS = [
  { label: 'start / ready', color: '#1a7f37', types: ['start', 'ready', 'adopt', 'registered', 'present'] },
  { label: 'exit / death', color: '#c62828', types: ['exit', 'failed', 'removed-dead', 'died'] },
  { label: 'restart', color: '#d97706', types: ['restart'] },
  { label: 'stop / leave', color: '#6b7385', types: ['stop', 'unregistered'] },
  { label: 'failover', color: '#9333ea', types: ['failover', 'elected'] },
  { label: 'dashboard', color: '#2f5bd3', types: [] },
];

function kindOf(e) {
  if (e.source === 'dashboard') return KINDS.length - 1;
  const i = KINDS.findIndex((k) => k.types.includes(e.type));
  return i < 0 ? 3 : i;
}

export class Timeline {
  constructor(el) {
    this.el = el;
    this.lanes = [];
    this.plot = undefined;
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(el);
  }

  size() {
    return { width: Math.max(300, this.el.clientWidth), height: 70 + 22 * Math.max(1, this.lanes.length) };
  }

  update(events) {
    // Lanes: the names with the latest events, top to bottom in order of first appearance.
    // Two runs' services of one name get a lane each (store:name) once events of several stores are shown.
    const multi = new Set(events.filter((e) => e.store).map((e) => e.store)).size > 1;
    const key = (e) => (multi && e.store ? `${e.store}:${e.name}` : e.name);
    const latest = new Map();
    for (const e of events) latest.set(key(e), e.at);
    const names = [...latest.entries()].sort((a, b) => b[1] - a[1]).slice(0, MAX_LANES).map(([n]) => n);
    const lanes = [...new Set(events.map(key))].filter((n) => names.includes(n));
    const laneOf = new Map(lanes.map((n, i) => [n, i]));
    const shown = events.filter((e) => laneOf.has(key(e))).sort((a, b) => a.at - b.at);
    const xs = shown.map((e) => e.at / 1000);
    const ys = KINDS.map((_, k) => shown.map((e) => (kindOf(e) === k ? laneOf.get(key(e)) : null)));
    const data = [xs, ...ys];
    const relayout = lanes.length !== this.lanes.length || lanes.some((n, i) => n !== this.lanes[i]);
    this.lanes = lanes;
    if (!this.plot || relayout) {
      this.plot?.destroy();
      this.plot = new uPlot(this.options(), data, this.el);
    } else {
      this.plot.setData(data);
    }
  }

  options() {
    const lanes = this.lanes;
    return {
      ...this.size(),
      scales: { x: { time: true }, y: { auto: false, range: [-0.6, Math.max(1, lanes.length) - 0.4] } },
      axes: [
        // Room for the date line under the times, and ticks far enough apart that labels never overlap.
        { stroke: '#6b7385', grid: { stroke: '#eef0f4' }, size: 52, space: 110, gap: 6 },
        {
          stroke: '#1d2330',
          size: 150,
          grid: { stroke: '#eef0f4' },
          splits: () => lanes.map((_, i) => i),
          values: (_u, splits) => splits.map((i) => lanes[i] ?? ''),
        },
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: false },
      series: [
        {},
        ...KINDS.map((k) => ({
          label: k.label,
          stroke: k.color,
          fill: k.color,
          width: 0,
          paths: () => null,
          points: { show: true, size: 10, width: 1, stroke: k.color, fill: k.color },
        })),
      ],
    };
  }
}
