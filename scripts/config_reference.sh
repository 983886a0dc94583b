#!/usr/bin/env bash
# The configuration reference in docs/configuration.md is the output of `ddptrain config-reference`
# (the config's own table of keys) between its BEGIN/END markers.
#   usage: config_reference.sh DDPTRAIN [--write]
# Without --write: exits 1, showing the difference, when the page differs from the binary's table
# (ctest config_reference_doc). With --write: puts the table into the page.
set -euo pipefail
BIN="$1"
MODE="${2:-check}"
DOC="$(cd "$(dirname "$0")/.." && pwd)/docs/configuration.md"
begin='<!-- BEGIN config-reference'
end='<!-- END config-reference -->'
grep -q "^$begin" "$DOC" && grep -q "^$end" "$DOC" || { echo "FAIL: $DOC has no $begin ... $end block"; exit 1; }
table="$(mktemp)"
trap 'rm -f "$table" "$table.page"' EXIT
"$BIN" config-reference >"$table"
# The page with the block's inside replaced by the table.
awk -v table="$table" -v b="$begin" -v e="$end" '
  index($0, b) == 1 { print; while ((getline line < table) > 0) print line; skip = 1; next }
  index($0, e) == 1 { skip = 0 }
  !skip { print }' "$DOC" >"$table.page"
if [ "$MODE" = --write ]; then
  cp "$table.page" "$DOC"
  echo "wrote the reference of $(grep -c '^| `' "$table") keys into $DOC"
elif diff -u "$DOC" "$table.page"; then
  echo "PASS: $DOC holds the reference of all $(grep -c '^| `' "$table") keys"
else
  echo "FAIL: $DOC differs from 'ddptrain config-reference'; run: bash scripts/config_reference.sh $BIN --write"
  exit 1
fi
