// roomvideo.js: starts the room's video before the rest of the room has loaded.
//
// The room page loads this small module graph (it and whep.js) as an async script at the end
// of <body>, so the WHEP offer goes out while chat, sale and i18n modules still load; joining
// is the room's most waited-for moment.
//   import { video } from "./roomvideo.js";
//   video.viewer          retry() and stop() of whichever plays: WHEP, or HLS after a fallback
//   video.state           the latest whep.js (or hlsplay.js) state
//   video.via             "whep", or "hls" once WHEP turned this viewer away
//   video.onState(fn)     fn(state) now and on every change

import { watch } from "./whep.js";

const streamId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const listeners = [];

export const video = {
  state: "connecting",
  via: "whep",
  viewer: null,
  onState(fn) {
    listeners.push(fn);
    fn(this.state);
  },
};

function onState(state) {
  video.state = state;
  for (const fn of listeners) fn(state);
}

const element = document.getElementById("video");
let hls = null;
const whep = watch(element, streamId, {
  onState,
  // A full relay or a network without WebRTC: watch the show a few seconds behind over HLS.
  async onFallback() {
    video.via = "hls";
    document.body.dataset.via = "hls";
    const { playHls } = await import("./hlsplay.js");
    hls = playHls(element, streamId, { onState });
  },
});
video.viewer = {
  retry() {
    if (hls) hls.retry();
    else whep.retry();
  },
  stop() {
    if (hls) hls.stop();
    else whep.stop();
  },
};
