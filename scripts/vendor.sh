#!/bin/sh
# Refresh web/static/vendor/msgpack.mjs from the npm registry (`make vendor`).
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
