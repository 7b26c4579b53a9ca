// hlsplay.js: plays a stream's live HLS (/hls/{id}/index.m3u8) when WebRTC cannot: the relay
// is full (WHEP 503 stream_full) or the browser cannot connect over WebRTC. A few seconds behind
// the WebRTC front rows; the chat, product and sale cards still come over the room socket.
//
//   import { playHls } from "./hlsplay.js";
//   const player = playHls(videoEl, streamId, { onState: (s, detail) => {} });
//     states as whep.js: "connecting" | "playing" | "reconnecting" | "stopped"; detail.via "hls"
//   player.retry()   start over (e.g. the show went live again)
//   player.stop()
//
// hls.js (vendored, loaded only here) plays through Media Source Extensions; without them (iOS
// Safari) the browser's own HLS plays the URL. hls.js runs without a worker: the pages' CSP
// allows no blob: workers.

const RETRY_MS = 2000;

export function playHls(video, streamId, { onState = () => {} } = {}) {
  const url = `/hls/${encodeURIComponent(streamId)}/index.m3u8`;
  const via = { via: "hls" };
  let hls = null;
  let stopped = false;
  let timer = null;

  const later = () => {
    if (stopped) return;
    onState("reconnecting", via);
    clearTimeout(timer);
    timer = setTimeout(start, RETRY_MS);
  };
  video.addEventListener("playing", () => !stopped && onState("playing", via));
  video.addEventListener("error", () => !hls && later());

  async function start() {
    if (stopped) return;
    clearTimeout(timer);
    if (hls) hls.destroy();
    hls = null;
    video.srcObject = null;
    if (window.MediaSource) {
      const { default: Hls } = await import("../vendor/hls.mjs");
      if (stopped) return;
      if (Hls.isSupported()) {
        hls = new Hls({ enableWorker: false, liveSyncDurationCount: 2 });
        // Not live yet (404) or a dropped connection: start over a little later.
        hls.on(Hls.Events.ERROR, (_event, data) => data.fatal && later());
        hls.loadSource(url);
        hls.attachMedia(video);
        video.play().catch(() => {});
        return;
      }
    }
    video.src = url;
    video.play().catch(() => {});
  }

  onState("connecting", via);
  start();
  return {
    retry() {
      stopped = false;
      start();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (hls) hls.destroy();
      hls = null;
      video.removeAttribute("src");
      onState("stopped", via);
    },
  };
}
