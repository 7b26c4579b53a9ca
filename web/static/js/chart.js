// A small line chart drawn by hand on a canvas (no library): one series over time, with its
// latest value, the max as the scale, and a soft fill. Crisp on high-DPI screens.
//
//   const c = new LineChart(canvas, { color: "#ff5a36", caption: (max) => t("ops.max", { max }) });
//   c.draw(times_ms, values);

export class LineChart {
  constructor(canvas, { color = "#ff5a36", caption = () => "", windowMs = 15 * 60_000 } = {}) {
    this.canvas = canvas;
    this.color = color;
    this.caption = caption;
    this.windowMs = windowMs;
  }

  _size() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth || 300;
    const h = this.canvas.clientHeight || 90;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w, h };
  }

  draw(times, values, nowMs = Date.now()) {
    const { ctx, w, h } = this._size();
    ctx.clearRect(0, 0, w, h);
    const pad = { l: 4, r: 4, t: 16, b: 4 };
    const max = Math.max(1e-9, ...values, 0) * 1.15 || 1;
    // The last 15 minutes, or since the first sample when the server is younger (at least 1 min).
    const span = Math.max(60_000, Math.min(this.windowMs, nowMs - (times.length ? times[0] : nowMs)));
    const x0 = nowMs - span;
    const x = (t) => pad.l + ((t - x0) / span) * (w - pad.l - pad.r);
    const y = (v) => h - pad.b - (v / max) * (h - pad.t - pad.b);

    // Quiet grid: a baseline and a half line.
    const grid = getComputedStyle(this.canvas).getPropertyValue("--chart-grid").trim() || "#2a2f3a";
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    for (const frac of [0, 0.5]) {
      const gy = Math.round(y(max * frac / 1.15)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, gy);
      ctx.lineTo(w - pad.r, gy);
      ctx.stroke();
    }
    const pts = [];
    for (let i = 0; i < times.length; i++) if (times[i] >= x0) pts.push([x(times[i]), y(values[i])]);
    this.canvas.dataset.points = String(pts.length); // what a test (or a curious operator) can read
    if (pts.length) {
      const grad = ctx.createLinearGradient(0, pad.t, 0, h);
      grad.addColorStop(0, this.color + "55");
      grad.addColorStop(1, this.color + "00");
      ctx.beginPath();
      ctx.moveTo(pts[0][0], h - pad.b);
      for (const [px, py] of pts) ctx.lineTo(px, py);
      ctx.lineTo(pts[pts.length - 1][0], h - pad.b);
      ctx.closePath();
      ctx.fillStyle = grad;
      ctx.fill();
      ctx.beginPath();
      pts.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
      ctx.strokeStyle = this.color;
      ctx.lineWidth = 1.75;
      ctx.lineJoin = "round";
      ctx.stroke();
      const [lx, ly] = pts[pts.length - 1];
      ctx.fillStyle = this.color;
      ctx.beginPath();
      ctx.arc(lx, ly, 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
    // The scale's top value, small, top-left.
    const muted = getComputedStyle(this.canvas).getPropertyValue("--chart-text").trim() || "#8b93a7";
    ctx.fillStyle = muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.fillText(this.caption(Math.max(0, ...values)), pad.l + 2, 2);
  }
}
