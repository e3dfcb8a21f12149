#!/usr/bin/env bash
# Builds the Release helper and its .deb into build-pkg/; prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=Release -DCOMPANION_TESTS=OFF >/dev/null
cmake --build build-pkg -j"$(nproc)" >/dev/null
(cd build-pkg && cpack -G DEB >/dev/null)
ls "$PWD"/build-pkg/companion-helper_*.deb
