// A small line chart drawn by hand on a canvas (no library): one series over time, with its
// latest value, the max as the scale, and a soft fill. Crisp on high-DPI screens.
//
//   const c = new LineChart(canvas, { color: "#ff5a36", caption: (max, n) => t("ops.max", { max }) });
//   c.draw(times_ms, values);
//
// What a young series has is drawn as what it is: one point is a bar labelled with its value
// (`format`), not a lone dot; all zeros (or nothing yet) is a flat line on the baseline. The
// caption gets the max and the number of points drawn, so a page can say "no sales yet" or
// "first minute" instead of a scale of 0. The caption also goes to data-caption and, given a
// `label`, to the canvas's aria-label ("<label>: <caption>"), for screen readers and tests.

export class LineChart {
  constructor(canvas, { color = "#ff5a36", caption = () => "", format = String, label = "", windowMs = 15 * 60_000 } = {}) {
    this.canvas = canvas;
    this.color = color;
    this.caption = caption;
    this.format = format;
    this.label = label;
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
    const pad = { l: 4, r: 4, t: 20, b: 4 };
    const max = Math.max(1e-9, ...values, 0) * 1.15 || 1;
    // The last 15 minutes, or since the first sample when the server is younger (at least 1 min).
    const span = Math.max(60_000, Math.min(this.windowMs, nowMs - (times.length ? times[0] : nowMs)));
    const x0 = nowMs - span;
    const x = (t) => pad.l + ((t - x0) / span) * (w - pad.l - pad.r);
    const y = (v) => h - pad.b - (v / max) * (h - pad.t - pad.b);
    const style = getComputedStyle(this.canvas);

    // Quiet grid: a baseline and a half line.
    ctx.strokeStyle = style.getPropertyValue("--chart-grid").trim() || "#2a2f3a";
    ctx.lineWidth = 1;
    for (const frac of [0, 0.5]) {
      const gy = Math.round(y((max * frac) / 1.15)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, gy);
      ctx.lineTo(w - pad.r, gy);
      ctx.stroke();
    }
    const pts = [];
    const seen = [];
    for (let i = 0; i < times.length; i++) {
      if (times[i] < x0) continue;
      pts.push([x(times[i]), y(values[i])]);
      seen.push(values[i]);
    }
    const top = Math.max(0, ...seen);
    this.canvas.dataset.points = String(pts.length); // what a test (or a curious operator) can read
    if (top <= 0) this._flat(ctx, pad, w, h);
    else if (pts.length === 1) this._bar(ctx, pts[0], seen[0], pad, w, h);
    else this._line(ctx, pts, pad, h);

    // The caption, small, top-left: the scale's top value, or what a young series means.
    const caption = this.caption(top, pts.length);
    ctx.fillStyle = style.getPropertyValue("--chart-text").trim() || "#8b93a7";
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText(caption, pad.l + 2, 3, w - pad.l - pad.r - 4);
    this.canvas.dataset.caption = caption;
    if (this.label) this.canvas.setAttribute("aria-label", caption ? `${this.label}: ${caption}` : this.label);
  }

  // Nothing but zeros: the series' colour along the baseline, the whole width, so "none" is drawn.
  _flat(ctx, pad, w, h) {
    ctx.strokeStyle = this.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(pad.l, h - pad.b - 1);
    ctx.lineTo(w - pad.r, h - pad.b - 1);
    ctx.stroke();
  }

  // One point: a bar from the baseline, labelled with its value beside its top.
  _bar(ctx, [px, py], value, pad, w, h) {
    const bw = Math.max(8, Math.min(28, (w - pad.l - pad.r) * 0.08));
    const left = Math.min(Math.max(pad.l, px - bw / 2), w - pad.r - bw);
    ctx.fillStyle = this.color;
    ctx.fillRect(left, py, bw, h - pad.b - py);
    ctx.font = "600 12px system-ui, sans-serif";
    ctx.textBaseline = "top";
    const text = this.format(value);
    // Right of the bar, or left of it when the bar stands at the right edge.
    const room = w - pad.r - (left + bw + 6);
    ctx.textAlign = room >= ctx.measureText(text).width ? "left" : "right";
    ctx.fillText(text, ctx.textAlign === "left" ? left + bw + 6 : left - 6, py);
  }

  _line(ctx, pts, pad, h) {
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
}
