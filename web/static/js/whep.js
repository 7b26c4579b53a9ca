// whep.js: watch a stream over WHEP (POST an SDP offer to /whep/{id}, play the answer).
//
//   import { watch } from "./whep.js";
//   const viewer = watch(videoEl, streamId, { onState: (s, detail) => {} });
//     states: "connecting" | "playing" | "waiting" (nothing live yet, retrying) |
//             "reconnecting" (media lost, retrying) | "stopped"
//   viewer.retry()   try again now (e.g. when the room says the stream went live)
//   viewer.stop()    hang up (DELETE the session) and stop retrying
//
// The video element should be `muted autoplay playsinline`; muted autoplay always starts, and
// the page offers a tap to unmute. Non-trickle: the offer is sent once ICE gathering ends, or
// after 100 ms with what is there (the server learns our address from our connectivity
// checks; see docs/stream.md on mDNS). A 307 from another worker is followed by fetch itself.

// Our candidates barely matter: a viewer page has only mDNS names, and the relay learns our
// address from our connectivity checks anyway. So the offer waits for them only briefly.
const GATHER_MS = 100;
const DISCONNECTED_GRACE_MS = 2500;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_MS);
  });
}

export function watch(video, streamId, { onState = () => {}, iceServers = [] } = {}) {
  let pc = null;
  let session = null;
  let stopped = false;
  let attempt = 0;
  let retryTimer = null;
  let graceTimer = null;
  let state = "";

  const set = (s, detail = {}) => {
    if (s === state) return;
    state = s;
    onState(s, detail);
  };

  const hangUp = () => {
    clearTimeout(graceTimer);
    if (pc) {
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
      pc = null;
    }
    if (session) {
      fetch(session, { method: "DELETE" }).catch(() => {});
      session = null;
    }
  };

  const later = (next) => {
    if (stopped) return;
    clearTimeout(retryTimer);
    attempt += 1;
    set(next);
    retryTimer = setTimeout(start, Math.min(8000, 1000 * 2 ** Math.min(attempt - 1, 3)));
  };

  async function start() {
    clearTimeout(retryTimer);
    hangUp();
    if (stopped) return;
    if (!state || state === "stopped") set("connecting");
    const mine = new RTCPeerConnection({ iceServers });
    pc = mine;
    mine.addTransceiver("video", { direction: "recvonly" });
    mine.addTransceiver("audio", { direction: "recvonly" });
    const media = new MediaStream();
    mine.ontrack = (e) => {
      media.addTrack(e.track);
      if (video.srcObject !== media) video.srcObject = media;
      video.play().catch(() => {});
    };
    mine.onconnectionstatechange = () => {
      if (pc !== mine) return;
      const s = mine.connectionState;
      clearTimeout(graceTimer);
      if (s === "failed") later("reconnecting");
      else if (s === "disconnected") {
        graceTimer = setTimeout(() => pc === mine && later("reconnecting"), DISCONNECTED_GRACE_MS);
      }
    };
    try {
      await mine.setLocalDescription(await mine.createOffer());
      await gathered(mine);
      const resp = await fetch(`/whep/${encodeURIComponent(streamId)}`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: mine.localDescription.sdp,
      });
      if (pc !== mine) return;
      if (resp.status === 404 || resp.status === 409 || resp.status === 503) {
        later("waiting"); // not live (yet), or full: keep trying quietly
        return;
      }
      if (!resp.ok) throw new Error(`WHEP ${resp.status}`);
      const loc = resp.headers.get("Location");
      session = loc ? new URL(loc, resp.url).href : null;
      await mine.setRemoteDescription({ type: "answer", sdp: await resp.text() });
    } catch {
      // A network error: reconnecting if we had a picture, else still waiting for one.
      if (pc === mine) later(state === "playing" || state === "reconnecting" ? "reconnecting" : state);
    }
  }

  const onFrame = () => {
    if (!stopped && pc) {
      attempt = 0;
      set("playing");
    }
  };
  video.addEventListener("playing", onFrame);
  video.addEventListener("resize", onFrame);
  addEventListener("online", () => {
    if (!stopped && state !== "playing") {
      attempt = 0;
      start();
    }
  });

  start();
  return {
    retry() {
      stopped = false; // a show that ended may go live again
      attempt = 0;
      start();
    },
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      hangUp();
      set("stopped");
    },
  };
}
