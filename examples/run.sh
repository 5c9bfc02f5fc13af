#!/usr/bin/env bash
# Builds deq's examples in Release mode and runs the main job: every attention mode (dense, static
# Longformer/BigBird/Fixed, Sanger, DEQ, three-level) on one batch, printed as a Markdown table.
# Installs the build tools it needs on a fresh Debian 12 machine (as root). Extra arguments are
# passed to the example (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== building examples (Release)"
cmake -S . -B build/examples -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DDEQ_BUILD_EXAMPLES=ON >/dev/null
cmake --build build/examples --target attention_modes
echo "== running attention_modes $*"
./build/examples/examples/attention_modes "$@"
