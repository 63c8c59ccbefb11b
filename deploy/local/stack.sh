#!/usr/bin/env bash
# The whole local stack: Apache Kafka (KRaft), ClickHouse, and the chdb venv.
#
#   stack.sh up|down|status
source "$(dirname "$0")/lib.sh"

here=$LOCAL_DIR
case "${1:-}" in
  up)
    bash "$here/kafka.sh" up
    bash "$here/clickhouse.sh" up
    bash "$here/chdb.sh" up
    ;;
  down)
    rc=0
    bash "$here/kafka.sh" down || rc=1
    bash "$here/clickhouse.sh" down || rc=1
    exit $rc
    ;;
  status)
    rc=0
    bash "$here/kafka.sh" status || rc=1
    bash "$here/clickhouse.sh" status || rc=1
    bash "$here/chdb.sh" status || rc=1
    exit $rc
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
