#!/usr/bin/env bash
# Checks that every tracked *.cpp and *.h is formatted as .clang-format says (clang-format 14, as
# Debian 12 ships it; another version may format differently): prints the files that differ and
# exits 1 if any do. Changes nothing; .ci/run runs it before the tests.
#   usage: bash scripts/check_format.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format: no clang-format (bash scripts/install.sh)" >&2; exit 2; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "check_format: not a git checkout" >&2; exit 2; }
version=$(clang-format --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
[ "$version" = 14 ] || echo "check_format: clang-format $version, not 14: differences may be the version's" >&2
mapfile -t files < <(git ls-files '*.cpp' '*.h')
differ=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue  # deleted in the working tree, not yet in the index
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || differ+=("$f")
done
if [ ${#differ[@]} -gt 0 ]; then
  printf 'check_format: not formatted: %s\n' "${differ[@]}"
  echo "check_format: ${#differ[@]} of ${#files[@]} files differ; fix with: clang-format -i \$(git ls-files '*.cpp' '*.h')"
  exit 1
fi
echo "check_format: ok (${#files[@]} files)"
