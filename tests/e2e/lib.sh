# Shared by the e2e shell tests (sourced after DDPTRAIN and MPIEXEC are set): a temporary folder
# $TMP removed on exit (after e2e_on_exit, which a test may redefine), PASS/FAIL lines with a
# failure count, and mpirun2 (the executable on 2 ranks, bounded by a timeout).
TMP=$(mktemp -d)
e2e_on_exit() { :; }
trap 'e2e_on_exit; rm -rf "$TMP"' EXIT
failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
mpirun2() { timeout 300 "$MPIEXEC" -np 2 --oversubscribe --bind-to none "$DDPTRAIN" "$@"; }
