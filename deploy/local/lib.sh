# Shared helpers for the deploy/local scripts (sourced, not run).
#
# State (data, logs, pid files, caches) lives under $MXTRAIL_STATE_DIR, default <repo>/.cache.
# Every script is idempotent: `up` on a running server only reports it; `down` stops only the
# process whose pid file we wrote, after checking the pid still runs our command line.

set -euo pipefail

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LOCAL_DIR/../.." && pwd)
STATE_DIR=${MXTRAIL_STATE_DIR:-$REPO_DIR/.cache}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)

log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# need_root_apt PKG... installs Debian packages when missing (we run as root on these machines).
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to apt-get install ${missing[*]} (or install them yourself)"
  log "installing ${missing[*]} with apt-get"
  # A stale package list finds nothing: refresh it once per state dir per day.
  local stamp="$STATE_DIR/.apt-updated"
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
    apt-get update -qq >"$STATE_DIR/apt-update.log" 2>&1 || die "apt-get update failed: see $STATE_DIR/apt-update.log"
    touch "$stamp"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$STATE_DIR/apt-install.log" 2>&1 || die "apt-get install ${missing[*]} failed: see $STATE_DIR/apt-install.log"
}

# pid_alive PIDFILE PATTERN: true when the pid in PIDFILE runs and its command line contains
# PATTERN (so a recycled pid is never mistaken for our server).
# pid_running PIDFILE: true while the pid in PIDFILE exists. For the start-up wait: the pid is
# the background subshell, whose command line is still bash's until it has exec'd the server,
# so pid_alive's pattern may not match yet (under load that read as "exited during start-up").
# A server that died is a zombie until this shell exits (nobody waits for it): not running.
pid_running() {
  local pid state
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
  [ -n "$state" ] && [ "$state" != Z ]
}

pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# stop_pid PIDFILE PATTERN NAME: TERM, wait up to 30 s, then KILL; removes the pid file.
stop_pid() {
  local pidfile=$1 pattern=$2 name=$3 pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    log "$name is not running (nothing of ours to stop)"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do
    pid_alive "$pidfile" "$pattern" || break
    sleep 0.5
  done
  if pid_alive "$pidfile" "$pattern"; then
    log "$name (pid $pid) did not stop after 30 s: sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
  log "$name stopped (pid $pid)"
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# probe builds (once per source change) the small Go probe the scripts use for readiness.
probe() {
  local bin="$STATE_DIR/bin/mxtrail-probe"
  local src="$LOCAL_DIR/probe/main.go"
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    command -v go >/dev/null || die "go is required (Go 1.26): https://go.dev/doc/install"
    mkdir -p "$STATE_DIR/bin"
    (cd "$REPO_DIR" && go build -o "$bin" ./deploy/local/probe) || die "building the readiness probe failed"
  fi
  "$bin" "$@"
}
