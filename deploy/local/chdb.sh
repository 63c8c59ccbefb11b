#!/usr/bin/env bash
# chdb (ClickHouse 26.x in-process, from PyPI) in a virtualenv, to prove that the DDL and the
# queries we ship for modern servers run on a current ClickHouse.
#
#   chdb.sh up|status|down      create the venv / report it / (down: nothing runs; no-op)
#   chdb.sh run FILE.sql        execute FILE's statements in one fresh session (see chdb_run.py)
#
# Environment: MXTRAIL_STATE_DIR (venv at $MXTRAIL_STATE_DIR/venv).
source "$(dirname "$0")/lib.sh"

VENV=$STATE_DIR/venv
CHDB_VERSION=4.4.0
PY=$VENV/bin/python

installed() { [ -x "$PY" ] && "$PY" -c "import chdb, sys; sys.exit(0 if chdb.__version__ == '$CHDB_VERSION' else 1)" 2>/dev/null; }

up() {
  if installed; then
    log "chdb $CHDB_VERSION ready in $VENV (ClickHouse $("$PY" -c 'import chdb; print(chdb.query("SELECT version()","CSV").data().strip().strip(chr(34)))'))"
    return 0
  fi
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  [ -x "$PY" ] || python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (apt-get install python3-venv)"
  log "installing chdb==$CHDB_VERSION from PyPI into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "chdb==$CHDB_VERSION" >"$STATE_DIR/chdb-pip.log" 2>&1 ||
    die "pip install chdb==$CHDB_VERSION failed: see $STATE_DIR/chdb-pip.log"
  installed || die "chdb imported with an unexpected version after install"
  up
}

case "${1:-}" in
  up) up ;;
  status) if installed; then echo "chdb: $CHDB_VERSION in $VENV"; else echo "chdb: not installed"; exit 3; fi ;;
  down) : ;;
  run) shift; installed || die "chdb is not installed: run '$0 up' (or make up)"; exec "$PY" "$LOCAL_DIR/chdb_run.py" "$@" ;;
  *) echo "usage: $0 up|down|status|run FILE.sql" >&2; exit 2 ;;
esac
