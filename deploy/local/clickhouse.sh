#!/usr/bin/env bash
# ClickHouse from Debian's clickhouse-server package (18.16 on bookworm), run with a
# project-local config so it never collides with a system instance.
#
#   clickhouse.sh up|down|status|client [clickhouse-client args...]
#
# Environment:
#   MXTRAIL_STATE_DIR                state root (default <repo>/.cache); data under clickhouse/
#   MXTRAIL_CLICKHOUSE_TCP_PORT      native protocol port (default 19000)
#   MXTRAIL_CLICKHOUSE_HTTP_PORT     HTTP port (default 18123; clickhouse-go cannot use it on 18.16)
source "$(dirname "$0")/lib.sh"

TCP_PORT=${MXTRAIL_CLICKHOUSE_TCP_PORT:-19000}
HTTP_PORT=${MXTRAIL_CLICKHOUSE_HTTP_PORT:-18123}
DIR=$STATE_DIR/clickhouse
CONF=$DIR/config.xml
PIDFILE=$DIR/clickhouse.pid
ADDR=127.0.0.1:$TCP_PORT

ensure_installed() {
  if ! command -v clickhouse-server >/dev/null || ! command -v clickhouse-client >/dev/null; then
    apt_install clickhouse-server clickhouse-client
  fi
  [ -f /etc/clickhouse-server/users.xml ] || die "/etc/clickhouse-server/users.xml missing: reinstall clickhouse-server"
}

write_config() {
  mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas" "$DIR/logs"
  cp /etc/clickhouse-server/users.xml "$DIR/users.xml"
  cat >"$CONF" <<CONF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/logs/clickhouse-server.log</log>
        <errorlog>$DIR/logs/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$TCP_PORT</tcp_port>
    <http_port>$HTTP_PORT</http_port>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>$DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>536870912</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <timezone>UTC</timezone>
</yandex>
CONF
}

version() { clickhouse-client --port "$TCP_PORT" --host 127.0.0.1 -q 'SELECT version()' 2>/dev/null; }

up() {
  if pid_alive "$PIDFILE" "$CONF"; then
    log "already running (pid $(cat "$PIDFILE")) on $ADDR, version $(version)"
    return 0
  fi
  port_in_use "$TCP_PORT" && die "port $TCP_PORT is in use by another process; set MXTRAIL_CLICKHOUSE_TCP_PORT or stop it"
  ensure_installed
  write_config
  log "starting clickhouse-server on $ADDR (HTTP 127.0.0.1:$HTTP_PORT), data in $DIR/data"
  (
    cd "$DIR"
    exec setsid nohup clickhouse-server --config-file="$CONF" >"$DIR/logs/stdout.log" 2>&1 </dev/null
  ) &
  echo $! >"$PIDFILE"
  local i
  for i in $(seq 1 120); do
    if ! pid_running "$PIDFILE"; then
      tail -20 "$DIR/logs/stdout.log" "$DIR/logs/clickhouse-server.err.log" 2>/dev/null >&2 || true
      die "clickhouse-server exited during start-up: see $DIR/logs/"
    fi
    if [ "$(clickhouse-client --port "$TCP_PORT" --host 127.0.0.1 -q 'SELECT 1' 2>/dev/null)" = 1 ]; then
      log "ready: ClickHouse $(version) (pid $(cat "$PIDFILE")) on $ADDR"
      return 0
    fi
    sleep 0.5
  done
  die "ClickHouse did not answer SELECT 1 on $ADDR within 60 s: see $DIR/logs/"
}

down() { stop_pid "$PIDFILE" "$CONF" "clickhouse"; }

status() {
  if pid_alive "$PIDFILE" "$CONF"; then
    local v
    v=$(version) || { echo "clickhouse: process runs (pid $(cat "$PIDFILE")) but does not answer on $ADDR"; return 1; }
    echo "clickhouse: running (pid $(cat "$PIDFILE")), version $v, $ADDR"
  else
    echo "clickhouse: stopped"
    return 3
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  client) shift; exec clickhouse-client --host 127.0.0.1 --port "$TCP_PORT" "$@" ;;
  *) echo "usage: $0 up|down|status|client [args]" >&2; exit 2 ;;
esac
