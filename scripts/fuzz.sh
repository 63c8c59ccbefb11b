#!/usr/bin/env bash
# Run every FuzzXxx target in the module for a fixed time each.
#   scripts/fuzz.sh 3s     (make test: a short run each, seeds included)
#   scripts/fuzz.sh 2m     (make fuzz)
set -euo pipefail
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."
found=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -lqs '^func Fuzz' "$dir"/*_test.go || continue
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    found=$((found + 1))
    echo "fuzz: $pkg $target for $fuzztime"
    # -run ^$ skips the unit tests (run separately); the seed corpus still runs first.
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
echo "fuzz: $found target(s) run for $fuzztime each"
