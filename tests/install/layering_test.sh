#!/usr/bin/env bash
# cmake/check_layering.cmake passes on this tree and fails, naming the file and the include, on a
# copy of the tree where a lower layer (dist) includes a higher one (train).
#   usage: layering_test.sh SOURCE_DIR
set -euo pipefail
SRC="$(realpath "$1")"
cmake -DSOURCE_DIR="$SRC" -P "$SRC/cmake/check_layering.cmake"
T="$(mktemp -d /tmp/ddptrain-layering.XXXXXX)"
trap 'rm -rf "$T"' EXIT
cp -r "$SRC/src" "$SRC/include" "$T/"
printf '#include "ddp/train/trainer.h"\n' >>"$T/src/dist/bucket_plan.cpp"
if out=$(cmake -DSOURCE_DIR="$T" -P "$SRC/cmake/check_layering.cmake" 2>&1); then
  echo "FAIL: dist including train was not refused"; exit 1
fi
grep -q 'src/dist/bucket_plan.cpp (layer dist) includes ddp/train/trainer.h (layer train)' <<<"$out" ||
  { echo "FAIL: the refusal does not name the file and the include:"; echo "$out"; exit 1; }
echo "PASS: a dist -> train include is refused: $(grep -o 'src/dist/bucket_plan.cpp[^;]*' <<<"$out")"
