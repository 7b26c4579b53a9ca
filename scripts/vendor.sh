#!/bin/sh
# Refresh web/static/vendor/msgpack.mjs and hls.mjs from the npm registry (`make vendor`).
# @msgpack/msgpack ships its ES build as many small files; its one-file UMD build is wrapped
# here as an ES module instead (it takes the CommonJS branch and exports onto a local object),
# so the room page loads one 22 KB file with no build step.
set -eu
VERSION="${MSGPACK_VERSION:-3.1.3}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$HERE/web/static/vendor"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "@msgpack/msgpack@$VERSION" >/dev/null && tar xzf msgpack-msgpack-*.tgz)
{
  echo "// @msgpack/msgpack $VERSION (ISC licence, see msgpack.LICENSE), dist.umd/msgpack.min.js"
  echo "// wrapped as an ES module by scripts/vendor.sh; do not edit, run \`make vendor\`."
  echo "const module = { exports: {} };"
  echo "const exports = module.exports;"
  grep -v '^//# sourceMappingURL' "$TMP/package/dist.umd/msgpack.min.js"
  echo
  echo "export const { encode, decode, Encoder, Decoder, DecodeError } = module.exports;"
} > "$OUT/msgpack.mjs"
cp "$TMP/package/LICENSE" "$OUT/msgpack.LICENSE"
echo "vendored @msgpack/msgpack $VERSION into $OUT/msgpack.mjs"

# hls.js: the light build (no subtitles, DRM or alternate audio), wrapped the same way; loaded
# only by a viewer that falls back from WebRTC to HLS.
HLS_VERSION="${HLS_VERSION:-1.6.15}"
(cd "$TMP" && rm -rf package && npm pack --silent "hls.js@$HLS_VERSION" >/dev/null && tar xzf hls.js-*.tgz)
{
  echo "// hls.js $HLS_VERSION (Apache-2.0 licence, see hls.LICENSE), dist/hls.light.min.js"
  echo "// wrapped as an ES module by scripts/vendor.sh; do not edit, run \`make vendor\`."
  echo "const module = { exports: {} };"
  echo "const exports = module.exports;"
  grep -v '^//# sourceMappingURL' "$TMP/package/dist/hls.light.min.js"
  echo
  echo "export default module.exports;"
} > "$OUT/hls.mjs"
cp "$TMP/package/LICENSE" "$OUT/hls.LICENSE"
echo "vendored hls.js $HLS_VERSION into $OUT/hls.mjs"
