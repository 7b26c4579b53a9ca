// studio-rehearsal.js: the studio's rehearsal desk. The REHEARSAL badge, the switch (PATCH
// /api/streams/{id}, refused while live), the command that sends a synthetic audience, and the
// links to the load tool's reports (GET /api/streams/{id}/rehearsal-reports), polled while the
// show is a rehearsal. Reports open in a new tab: the server serves them sandboxed.

import { api } from "./api.js";
import { $, el, show } from "./dom.js";
import { errorText, t, time } from "./i18n.js";

const REPORTS_EVERY_MS = 10000;

export class RehearsalDesk {
  constructor({ streamId, stream }) {
    this.streamId = streamId;
    this.rehearsal = Boolean(stream.rehearsal);
    this.status = stream.status;
    this.reports = [];
    this.timer = null;
    $("rehearsal-toggle").addEventListener("change", (ev) => this.toggle(ev.target.checked));
    $("rehearsal-command").textContent =
      `livesell-loadtest show --url ${location.origin} --rehearse ${streamId} --viewers 200 --duration 300`;
    this.render();
  }

  async toggle(on) {
    $("rehearsal-error").textContent = "";
    try {
      const s = await api(`/api/streams/${encodeURIComponent(this.streamId)}`, {
        method: "PATCH",
        body: { rehearsal: on },
      });
      this.rehearsal = Boolean(s.rehearsal);
    } catch (e) {
      $("rehearsal-error").textContent =
        e.code === "stream_live" ? t("studio.rehearsal.whileLive") : t("common.error", { message: errorText(e) });
    }
    this.render();
  }

  streamStatus(status) {
    this.status = status;
    this.render();
  }

  render() {
    show($("rehearsal-badge"), this.rehearsal);
    show($("rehearsal-more"), this.rehearsal || this.reports.length > 0);
    const box = $("rehearsal-toggle");
    box.checked = this.rehearsal;
    box.disabled = this.status === "live";
    this.renderReports();
    if (this.rehearsal && !this.timer) {
      this.poll();
      this.timer = setInterval(() => this.poll(), REPORTS_EVERY_MS);
    } else if (!this.rehearsal && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  async poll() {
    try {
      const { reports } = await api(`/api/streams/${encodeURIComponent(this.streamId)}/rehearsal-reports`);
      this.reports = reports;
      this.renderReports();
      show($("rehearsal-more"), this.rehearsal || this.reports.length > 0);
    } catch {
      /* the next poll retries */
    }
  }

  renderReports() {
    const ul = $("rehearsal-reports");
    ul.replaceChildren();
    for (const r of this.reports) {
      const li = el("li", "rehearsal-report");
      const a = el(
        "a",
        "report-link",
        t("studio.rehearsal.report", {
          time: time(r.at_ms),
          orders: r.orders ?? "–",
          verdict: t(r.exit_code === 0 ? "studio.rehearsal.passed" : "studio.rehearsal.failed"),
        }),
      );
      a.href = r.html_url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      const j = el("a", "muted small", t("studio.rehearsal.json"));
      j.href = r.json_url;
      j.target = "_blank";
      j.rel = "noopener noreferrer";
      if (r.reason) a.title = r.reason;
      li.append(a, " ", j);
      ul.append(li);
    }
    show($("rehearsal-none"), this.reports.length === 0);
  }

  relabel() {
    this.renderReports();
  }
}
