// roomvideo.js: starts the room's video before the rest of the room has loaded.
//
// The room page loads this small module graph (it and whep.js) as an async script at the end
// of <body>, so the WHEP offer goes out while chat, sale and i18n modules still load; joining
// is the room's most waited-for moment.
//   import { video } from "./roomvideo.js";
//   video.viewer          the whep.js handle (retry(), stop())
//   video.state           the latest whep.js state
//   video.onState(fn)     fn(state) now and on every change

import { watch } from "./whep.js";

const streamId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const listeners = [];

export const video = {
  state: "connecting",
  viewer: null,
  onState(fn) {
    listeners.push(fn);
    fn(this.state);
  },
};

video.viewer = watch(document.getElementById("video"), streamId, {
  onState(state) {
    video.state = state;
    for (const fn of listeners) fn(state);
  },
});
