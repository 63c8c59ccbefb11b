#!/usr/bin/env bash
# promtool (Debian's `prometheus` package) and amtool (`prometheus-alertmanager`) for the rule
# and Alertmanager-config checks of deploy/prometheus. Starts nothing: the package is only
# unpacked (apt-get download + dpkg-deb -x) under $MXTRAIL_STATE_DIR/prometheus/, unless the
# tool is already on PATH.
#
#   promtool.sh [path] [promtool|amtool]   print the tool's path, fetching it when missing
#   promtool.sh status                     report both tools
#
# Idempotent; exits non-zero with the reason when the tool cannot be had (no apt, no network).
source "$(dirname "$0")/lib.sh"

ROOT=$STATE_DIR/prometheus/root

package_of() {
  case "$1" in
    promtool) echo prometheus ;;
    amtool) echo prometheus-alertmanager ;;
    *) die "unknown tool $1 (want promtool or amtool)" ;;
  esac
}

find_tool() {
  local t=$1
  if command -v "$t" >/dev/null 2>&1; then command -v "$t"; return 0; fi
  if [ -x "$ROOT/usr/bin/$t" ]; then echo "$ROOT/usr/bin/$t"; return 0; fi
  return 1
}

fetch() {
  local t=$1 pkg dl
  pkg=$(package_of "$t")
  command -v apt-get >/dev/null || die "$t is not installed and apt-get is missing: install Debian's $pkg package"
  command -v dpkg-deb >/dev/null || die "$t is not installed and dpkg-deb is missing: install Debian's $pkg package"
  dl=$STATE_DIR/prometheus/debs
  mkdir -p "$dl" "$ROOT"
  log "downloading Debian package $pkg (for $t) into $dl"
  if ! (cd "$dl" && apt-get download "$pkg") >"$STATE_DIR/prometheus/apt-download.log" 2>&1; then
    # A stale or missing package list finds nothing: refresh it once (needs root) and retry.
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq >"$STATE_DIR/apt-update.log" 2>&1 || die "apt-get update failed: see $STATE_DIR/apt-update.log"
      (cd "$dl" && apt-get download "$pkg") >"$STATE_DIR/prometheus/apt-download.log" 2>&1 ||
        die "apt-get download $pkg failed: see $STATE_DIR/prometheus/apt-download.log"
    else
      die "apt-get download $pkg failed (try apt-get update as root): see $STATE_DIR/prometheus/apt-download.log"
    fi
  fi
  local deb
  deb=$(ls -t "$dl"/"${pkg}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || die "apt-get download $pkg left no .deb in $dl"
  dpkg-deb -x "$deb" "$ROOT" || die "dpkg-deb -x $deb failed"
  [ -x "$ROOT/usr/bin/$t" ] || die "$deb has no usr/bin/$t"
  "$ROOT/usr/bin/$t" --version >/dev/null 2>&1 || die "$ROOT/usr/bin/$t does not run on this machine"
}

path() {
  local t=${1:-promtool}
  package_of "$t" >/dev/null
  find_tool "$t" && return 0
  fetch "$t"
  find_tool "$t"
}

case "${1:-path}" in
  path) path "${2:-promtool}" ;;
  promtool | amtool) path "$1" ;;
  status)
    rc=0
    for t in promtool amtool; do
      if p=$(find_tool "$t"); then echo "$t: $p ($("$p" --version 2>&1 | head -1))"; else echo "$t: not installed"; rc=3; fi
    done
    exit $rc
    ;;
  *) echo "usage: $0 [path] [promtool|amtool] | status" >&2; exit 2 ;;
esac
