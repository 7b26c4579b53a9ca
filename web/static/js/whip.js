// WHIP publisher (RFC 9725) for the host studio: camera and microphone to POST /whip/{id}.
//
//   const pub = new WhipPublisher(`/whip/${id}`, token);
//   await pub.start(mediaStream);       // throws WhipError {status, code} (409 = already live)
//   await pub.replaceTrack(track);      // switch camera/mic while live, no renegotiation
//   await pub.bitrate();                // outgoing bits per second since the last call
//   await pub.stop();                   // DELETE the session (ends the show for viewers)
//   pub.onstate = (s) => ...            // "connecting" | "live" | "failed" | "closed"
//
// The relay answers with every ICE candidate, and we send every one of ours in the offer
// (we wait for gathering), so no trickle PATCH is needed.

/** An HTTP refusal from the WHIP endpoint, with the server's error code. */
export class WhipError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

const GATHER_TIMEOUT_MS = 2000;

function waitForGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    // Host candidates arrive within milliseconds; a missing STUN server can stall gathering,
    // and what we already have is enough for a relay on the same network.
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

function preferH264(transceiver) {
  // H.264 first when the browser can send it (hardware encoders on phones); the relay takes
  // the first codec it can forward, and VP8 stays in the list as the fallback.
  const caps = window.RTCRtpSender?.getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
  if (!h264.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== "video/h264");
  try {
    transceiver.setCodecPreferences([...h264, ...rest]);
  } catch {
    // Some builds reject the list; the default order still works.
  }
}

export class WhipPublisher {
  constructor(url, token, iceServers = []) {
    this.url = url;
    this.token = token;
    this.iceServers = iceServers;
    this.pc = null;
    this.location = null;
    this.onstate = () => {};
    this._last = null;
  }

  async start(stream) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    for (const track of stream.getTracks()) {
      const t = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      if (track.kind === "video") preferH264(t);
    }
    pc.addEventListener("connectionstatechange", () => {
      const s = pc.connectionState;
      if (s === "connected") this.onstate("live");
      else if (s === "failed") this.onstate("failed");
      else if (s === "disconnected") this.onstate("connecting");
    });
    this.onstate("connecting");
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc);
    const res = await fetch(this.url, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${this.token}` },
      body: pc.localDescription.sdp,
    });
    if (res.status !== 201) {
      let body = {};
      try {
        body = await res.json();
      } catch {
        // Not JSON: keep the status alone.
      }
      pc.close();
      this.pc = null;
      throw new WhipError(res.status, body.error || `http_${res.status}`, body.message);
    }
    const loc = res.headers.get("Location");
    this.location = loc ? new URL(loc, new URL(this.url, location.href)).href : null;
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  }

  async replaceTrack(track) {
    if (!this.pc) return;
    const sender = this.pc.getSenders().find((s) => s.track && s.track.kind === track.kind);
    if (sender) await sender.replaceTrack(track);
  }

  async bitrate() {
    if (!this.pc) return 0;
    const stats = await this.pc.getStats();
    let bytes = 0;
    stats.forEach((r) => {
      if (r.type === "outbound-rtp") bytes += r.bytesSent || 0;
    });
    const now = performance.now();
    const last = this._last;
    this._last = { bytes, now };
    if (!last || now <= last.now) return 0;
    return Math.max(0, ((bytes - last.bytes) * 8 * 1000) / (now - last.now));
  }

  async stop() {
    const loc = this.location;
    this.location = null;
    const pc = this.pc;
    this.pc = null;
    // DELETE before hanging up: the relay would otherwise see the connection drop first and
    // take it for a lost publisher who may come back, leaving the show's sales open.
    if (loc) {
      try {
        await fetch(loc, { method: "DELETE", headers: { Authorization: `Bearer ${this.token}` } });
      } catch {
        // The relay ends the show by itself once media stops arriving.
      }
    }
    if (pc) pc.close();
    this.onstate("closed");
  }
}
