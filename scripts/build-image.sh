#!/usr/bin/env bash
# Builds the drover container image without pulling anything: FROM scratch plus a
# statically linked drover (no libc, no shell, nothing else in it).
#
#   scripts/build-image.sh [TAG]                  default TAG drover:latest
#
# It runs `cargo build --release --target x86_64-unknown-linux-gnu` with
# RUSTFLAGS='-C target-feature=+crt-static' (a separate target dir, so build
# scripts stay dynamic), then imports a root filesystem holding /drover and /tmp.
# The image's entrypoint is /drover, its default command
# `run -c /etc/drover/drover.toml` (mount your config there); `drover backend
# --listen 0.0.0.0:8080` as the command makes it the demo backend.
#
#   DROVER_BINARY=path   use this binary instead of building one (a dynamically
#                        linked one gets exactly the libraries `ldd` lists; the
#                        tests use their debug build this way)
#   DROVER_PROFILE=name  cargo profile for the build (default release)
#
# Host names in the config are not resolved inside the image (a static glibc has
# no NSS modules): use IP addresses, `localhost`, or discovery (docker_labels).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=${1:-drover:latest}
bin=${DROVER_BINARY:-}
if [[ -z $bin ]]; then
  profile=${DROVER_PROFILE:-release}
  (cd "$here/.." &&
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      cargo build --profile "$profile" --target x86_64-unknown-linux-gnu --bin drover)
  dir=$profile
  [[ $profile == dev ]] && dir=debug
  bin=$here/../target/x86_64-unknown-linux-gnu/$dir/drover
fi
DROVER_IMAGE_CMD='["run", "-c", "/etc/drover/drover.toml"]' \
  exec "$here/build-test-image.sh" "$bin" "$tag"
