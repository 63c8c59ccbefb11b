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
    out=$(mktemp)
    attempt=1
    until go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; do
      # Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" as
      # -fuzztime ends (go.dev/issue/75804, a race fixed in Go 1.27): no failing input is written,
      # so it is not a finding. A real crash writes testdata/fuzz/<target>/ and fails at once.
      # It hit 2 of the 24 targets in one CI run here; with a single retry, a second hit on the
      # same target would have turned CI red. Up to 4 attempts.
      if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out" && [ "$attempt" -lt 4 ]; then
        attempt=$((attempt + 1))
        echo "fuzz: $target: the coordinator's deadline race, no finding; attempt $attempt of 4"
      else
        rm -f "$out"
        exit 1
      fi
    done
    rm -f "$out"
  done
done
echo "fuzz: $found target(s) run for $fuzztime each"
