// The throughput chart: pages per second over time as inline SVG, drawn from
// the progress samples this page has seen (no charting library).
'use strict';

class ThroughputChart {
  constructor(container, { width = 560, height = 150, maxPoints = 240 } = {}) {
    this.container = container;
    this.width = width;
    this.height = height;
    this.maxPoints = maxPoints;
    this.samples = []; // {t: ms, ended: pages}
    this.summary = ''; // shown while there are too few samples to draw
    this.note = Trawl.el('p', { class: 'muted small chart-note' });
    this.svg = this.make('svg', {
      viewBox: `0 0 ${width} ${height}`, class: 'chart-svg', role: 'img', 'aria-label': 'Pages per second over time',
    });
    container.append(this.svg, this.note);
    this.draw();
  }

  make(tag, attrs = {}) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  add(ended, t = Date.now()) {
    const last = this.samples[this.samples.length - 1];
    if (last && t - last.t < 250) { last.ended = ended; return; }
    this.samples.push({ t, ended });
    if (this.samples.length > this.maxPoints) this.samples.shift();
    this.draw();
  }

  // Rate between neighbouring samples, smoothed over about five seconds.
  rates() {
    const out = this.samples.length ? [{ t: this.samples[0].t, r: 0 }] : [];
    for (let i = 1; i < this.samples.length; i += 1) {
      let j = i - 1;
      while (j > 0 && this.samples[i].t - this.samples[j].t < 5000) j -= 1;
      const dt = (this.samples[i].t - this.samples[j].t) / 1000;
      out.push({ t: this.samples[i].t, r: dt > 0 ? Math.max(0, (this.samples[i].ended - this.samples[j].ended) / dt) : 0 });
    }
    return out;
  }

  draw() {
    while (this.svg.firstChild) this.svg.firstChild.remove();
    const pad = { l: 40, r: 8, t: 10, b: 20 };
    const w = this.width - pad.l - pad.r;
    const h = this.height - pad.t - pad.b;
    const rates = this.rates();
    const peak = Math.max(1, ...rates.map((p) => p.r));
    const top = niceCeil(peak);
    for (const frac of [0, 0.5, 1]) {
      const y = pad.t + h - frac * h;
      this.svg.append(this.make('line', { x1: pad.l, x2: pad.l + w, y1: y, y2: y, class: 'grid' }));
      const label = this.make('text', { x: pad.l - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' });
      label.textContent = String(+(top * frac).toFixed(1));
      this.svg.append(label);
    }
    if (rates.length < 2) {
      this.note.textContent = this.summary || 'The chart fills in while this page watches the job.';
      return;
    }
    const t0 = rates[0].t;
    const span = Math.max(1, rates[rates.length - 1].t - t0);
    const pts = rates.map((p) => [pad.l + ((p.t - t0) / span) * w, pad.t + h - (p.r / top) * h]);
    const line = pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    const area = `${pts[0][0].toFixed(1)},${pad.t + h} ${line} ${pts[pts.length - 1][0].toFixed(1)},${pad.t + h}`;
    this.svg.append(this.make('polygon', { points: area, class: 'area' }));
    this.svg.append(this.make('polyline', { points: line, class: 'line' }));
    const yLabel = this.make('text', { x: pad.l + 4, y: pad.t + 10, class: 'axis', 'text-anchor': 'start' });
    yLabel.textContent = 'pages/s';
    this.svg.append(yLabel);
    const xLabel = this.make('text', { x: pad.l + w, y: this.height - 4, class: 'axis', 'text-anchor': 'end' });
    xLabel.textContent = `last ${Trawl.fmt.duration(span / 1000)}`;
    this.svg.append(xLabel);
    const now = rates[rates.length - 1].r;
    this.note.textContent = `Now ${now.toFixed(1)} pages/s · peak ${peak.toFixed(1)} pages/s`;
  }
}

function niceCeil(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}
