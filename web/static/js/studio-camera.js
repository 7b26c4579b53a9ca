// studio-camera.js: the studio's camera and microphone preview, device pickers, and the one
// big button: "Go live" (WHIP publish) that becomes "End show" (with a confirmation).
// Clear states for: camera denied (and how to allow it), no camera, camera busy, already live
// elsewhere (409), connection lost (retrying), and the show having ended.

import { $, el, show } from "./dom.js";
import { clock, errorText, t } from "./i18n.js";
import { WhipPublisher } from "./whip.js";

const RETRY_FOR_MS = 60000;

export class Camera {
  constructor({ streamId, token, banner, onPhase = () => {} }) {
    this.streamId = streamId;
    this.onPhase = onPhase;
    this.token = token;
    this.banner = banner;
    this.media = null;
    this.pub = null;
    this.phase = "idle"; // idle | connecting | live | retrying | ended
    this.liveSince = 0;
    this.camState = null;
    this.btn = $("golive");
    this.btn.addEventListener("click", () => this._click());
    $("cam-retry").addEventListener("click", () => this.init());
    $("cam-select").addEventListener("change", () => this._switch("video"));
    $("mic-select").addEventListener("change", () => this._switch("audio"));
    $("end-dialog").addEventListener("close", () => {
      if ($("end-dialog").returnValue === "end") this.end();
    });
    setInterval(() => this._tick(), 500);
  }

  async init() {
    this._camState(null);
    if (!navigator.mediaDevices?.getUserMedia) {
      this._camState("unsupported");
      return;
    }
    try {
      await this._open({ video: this._videoWant(), audio: true });
    } catch (e) {
      this._fail(e);
    }
    // Listed even when access failed: without permission the names are hidden, not the count.
    await this._devices();
    if (!this.watching) {
      this.watching = true;
      navigator.mediaDevices.addEventListener("devicechange", () => this._devices());
    }
  }

  _videoWant(deviceId) {
    const want = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
    if (deviceId) want.deviceId = { exact: deviceId };
    return want;
  }

  async _open(constraints) {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    if (this.media) for (const tr of this.media.getTracks()) tr.stop();
    this.media = stream;
    $("preview").srcObject = stream;
    this._camState(null);
    this._button();
  }

  _fail(e) {
    const name = e && e.name;
    if (name === "NotAllowedError" || name === "SecurityError") this._camState("denied");
    else if (name === "NotFoundError" || name === "OverconstrainedError") this._camState("none");
    else if (name === "NotReadableError" || name === "AbortError") this._camState("busy");
    else this._camState("failed");
    this._button();
  }

  _camState(kind) {
    this.camState = kind;
    show($("cam-state"), Boolean(kind));
    if (!kind) return;
    $("cam-state-title").textContent = t(`studio.cam.${kind}.title`);
    $("cam-state-body").textContent = t(`studio.cam.${kind}.body`);
  }

  async _devices() {
    let list = [];
    try {
      list = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return;
    }
    const current = (kind) => this.media?.getTracks().find((tr) => tr.kind === kind)?.getSettings().deviceId;
    for (const [kind, id, label] of [["videoinput", "cam-select", "studio.cam.unnamed"], ["audioinput", "mic-select", "studio.mic.unnamed"]]) {
      const sel = $(id);
      const devices = list.filter((d) => d.kind === kind);
      sel.replaceChildren(
        ...devices.map((d, i) => {
          const o = el("option", null, d.label || t(label, { n: i + 1 }));
          o.value = d.deviceId;
          return o;
        }),
      );
      const now = current(kind === "videoinput" ? "video" : "audio");
      if (now) sel.value = now;
      sel.disabled = devices.length === 0;
    }
  }

  async _switch(kind) {
    const id = $(kind === "video" ? "cam-select" : "mic-select").value;
    const constraints = kind === "video" ? { video: this._videoWant(id) } : { audio: { deviceId: { exact: id } } };
    let fresh;
    try {
      fresh = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (e) {
      this._fail(e);
      return;
    }
    const track = fresh.getTracks()[0];
    if (!this.media) this.media = new MediaStream();
    for (const old of this.media.getTracks().filter((tr) => tr.kind === kind)) {
      this.media.removeTrack(old);
      old.stop();
    }
    this.media.addTrack(track);
    $("preview").srcObject = this.media;
    if (this.pub) await this.pub.replaceTrack(track);
  }

  hasVideo() {
    return Boolean(this.media && this.media.getVideoTracks().some((tr) => tr.readyState === "live"));
  }

  _button() {
    const b = this.btn;
    const live = this.phase === "live" || this.phase === "retrying";
    b.classList.toggle("btn-primary", !live);
    b.classList.toggle("btn-danger", live);
    if (this.phase === "connecting") {
      b.textContent = t("studio.connecting");
      b.disabled = true;
    } else if (live) {
      b.textContent = t("studio.endShow");
      b.disabled = false;
    } else {
      b.textContent = t(this.phase === "ended" ? "studio.goLiveAgain" : "studio.goLive");
      b.disabled = !this.hasVideo();
    }
    show($("onair"), live);
    this.onPhase(this.phase);
  }

  relabel() {
    this._button();
    if (this.camState) this._camState(this.camState);
  }

  _msg(key, parts) {
    $("live-msg").textContent = key ? t(key, parts) : "";
  }

  _click() {
    if (this.phase === "live" || this.phase === "retrying") {
      const d = $("end-dialog");
      if (d.showModal) d.showModal();
      else this.end(); // no <dialog> support: the button is the confirmation
    } else {
      this.goLive();
    }
  }

  async goLive() {
    if (!this.hasVideo()) return;
    this.phase = "connecting";
    this._msg(null);
    this._button();
    try {
      await this._publish();
    } catch (e) {
      this.phase = "idle";
      this._button();
      if (e.status === 409) this._msg("studio.already");
      else if (e.status === 401 || e.status === 403) this._msg("studio.notAllowed");
      else this._msg("studio.publishFailed", { message: errorText(e) });
      return;
    }
    this.phase = "live";
    this.liveSince = Date.now();
    this.banner(null);
    this._button();
    this._msg("studio.liveNow");
  }

  async _publish() {
    const pub = new WhipPublisher(`/whip/${encodeURIComponent(this.streamId)}`, this.token());
    pub.onstate = (s) => this._peerState(pub, s);
    await pub.start(this.media);
    this.pub = pub;
  }

  _peerState(pub, s) {
    if (pub !== this.pub) return;
    if (s === "connecting" && this.phase === "live") this.banner(t("studio.unstable"));
    if (s === "live" && this.phase === "live") this.banner(null);
    if (s === "failed" && this.phase === "live") this._recover();
  }

  async _recover() {
    // The link to the relay broke. The old session stays until the relay's media timeout, so a
    // new publish gets 409 for a few seconds: keep trying, quietly, for a minute.
    this.phase = "retrying";
    this.banner(t("studio.lost"));
    this._button();
    const old = this.pub;
    this.pub = null;
    if (old?.pc) old.pc.close();
    const until = Date.now() + RETRY_FOR_MS;
    while (this.phase === "retrying" && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 2000));
      if (this.phase !== "retrying") return;
      try {
        await this._publish();
        this.phase = "live";
        this.banner(null);
        this._button();
        return;
      } catch {
        /* 409 while the old session times out, or still offline: try again */
      }
    }
    if (this.phase === "retrying") {
      this.phase = "idle";
      this.banner(t("studio.lostGaveUp"));
      this._button();
    }
  }

  async end() {
    this.phase = "ended";
    const pub = this.pub;
    this.pub = null;
    this._button();
    this.banner(null);
    this._msg("studio.ended");
    if (pub) await pub.stop();
  }

  streamStatus(status, initial) {
    if (status === "ended" && (this.phase === "live" || this.phase === "retrying")) {
      // The relay ended it (no media for a while, or another tab ended it).
      this.end();
    } else if (status === "live" && this.phase === "idle" && initial) {
      this._msg("studio.liveElsewhere");
    }
  }

  async bitrate() {
    return this.pub ? this.pub.bitrate() : null;
  }

  _tick() {
    if (this.phase === "live" || this.phase === "retrying") {
      $("onair-time").textContent = clock(Date.now() - this.liveSince);
    }
  }
}
