#!/usr/bin/env bash
# The whole local stack: Apache Kafka (KRaft), ClickHouse, and the chdb venv.
#
#   stack.sh up|down|status [SERVICE...]
#
# SERVICEs are kafka, clickhouse and chdb (default: all of them); `make run` starts only
# clickhouse, since `mxtrail run` brings its own embedded broker.
source "$(dirname "$0")/lib.sh"

here=$LOCAL_DIR
cmd=${1:-}
shift || true
services=("$@")
if [ ${#services[@]} -eq 0 ]; then
  services=(kafka clickhouse chdb)
fi
for s in "${services[@]}"; do
  case "$s" in
    kafka|clickhouse|chdb) ;;
    *) echo "$0: unknown service '$s' (want kafka, clickhouse or chdb)" >&2; exit 2 ;;
  esac
done
case "$cmd" in
  up)
    for s in "${services[@]}"; do
      bash "$here/$s.sh" up
    done
    ;;
  down)
    rc=0
    for s in "${services[@]}"; do
      [ "$s" = chdb ] && continue # a venv: nothing runs
      bash "$here/$s.sh" down || rc=1
    done
    exit $rc
    ;;
  status)
    rc=0
    for s in "${services[@]}"; do
      bash "$here/$s.sh" status || rc=1
    done
    exit $rc
    ;;
  *) echo "usage: $0 up|down|status [kafka|clickhouse|chdb...]" >&2; exit 2 ;;
esac
