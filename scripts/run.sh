#!/usr/bin/env bash
# The main job: installs what is missing, builds the plugin and the CLI, and shows the
# omnimatte plugin to GStreamer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
# shellcheck source=scripts/env.sh
. scripts/env.sh
features=()
for arg in "$@"; do [ "$arg" = --cuda ] && features=(--features cuda); done
cargo build --release "${features[@]}"
gst-inspect-1.0 omnimatte
