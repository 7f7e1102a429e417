#!/usr/bin/env bash
# Builds a container image of drover without pulling any base image:
# a root filesystem holding the drover binary (and, for a dynamically linked
# binary, exactly the shared libraries `ldd` lists), imported with `docker import`.
#
#   scripts/build-test-image.sh [BINARY] [TAG]
#     BINARY  default target/debug/drover (a static build also works:
#             RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu)
#     TAG     default drover-backend:dev
#
# The image runs `drover backend --listen 0.0.0.0:8080` by default (name = the
# container's hostname); override the command to run drover itself, or set
# DROVER_IMAGE_CMD (a JSON array, e.g. '["run", "-c", "/etc/drover/drover.toml"]')
# for another default (scripts/build-image.sh does).
set -euo pipefail
bin=${1:-target/debug/drover}
tag=${2:-drover-backend:dev}
cmd=${DROVER_IMAGE_CMD:-'["backend", "--listen", "0.0.0.0:8080"]'}
[[ -x $bin ]] || { echo "build-test-image: $bin is not an executable (build drover first)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cp "$bin" "$root/drover"
if ldd "$bin" >/dev/null 2>&1; then
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
fi
mkdir -p "$root/tmp"
tar -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/drover"]' \
  --change "CMD $cmd" \
  --change 'EXPOSE 8080 9090' \
  - "$tag" >/dev/null
echo "$tag"
