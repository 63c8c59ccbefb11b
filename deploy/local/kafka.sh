#!/usr/bin/env bash
# Apache Kafka 4.x, single node in KRaft mode (broker + controller), on loopback.
#
#   kafka.sh up|down|status
#
# Jars come from Maven Central through Maven (kafka/pom.xml) and are cached. Environment:
#   MXTRAIL_STATE_DIR              state root (default <repo>/.cache)
#   MXTRAIL_KAFKA_PORT             broker port (default 19092)
#   MXTRAIL_KAFKA_CONTROLLER_PORT  controller port (default 19093)
#   MXTRAIL_KAFKA_JARS             jar cache (default $MXTRAIL_STATE_DIR/kafka-jars); tests that
#                                  start a private broker share the main cache through it
#   MXTRAIL_KAFKA_HEAP             JVM heap (default 1g)
source "$(dirname "$0")/lib.sh"

PORT=${MXTRAIL_KAFKA_PORT:-19092}
CPORT=${MXTRAIL_KAFKA_CONTROLLER_PORT:-19093}
JARS=${MXTRAIL_KAFKA_JARS:-$STATE_DIR/kafka-jars}
HEAP=${MXTRAIL_KAFKA_HEAP:-1g}
DIR=$STATE_DIR/kafka
PIDFILE=$DIR/kafka.pid
CONF=$DIR/server.properties
ADDR=127.0.0.1:$PORT

ensure_java() {
  if ! command -v java >/dev/null || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
    apt_install openjdk-17-jre-headless
  fi
  command -v mvn >/dev/null || apt_install maven
}

ensure_jars() {
  local pom=$LOCAL_DIR/kafka/pom.xml stamp=$JARS/.complete
  # Re-fetch when the pom (and so the pinned versions) changed.
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sha256sum <"$pom")" ]; then return 0; fi
  log "fetching Apache Kafka jars from Maven Central into $JARS"
  rm -rf "$JARS.tmp" && mkdir -p "$JARS.tmp"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$JARS.tmp" >"$STATE_DIR/kafka-mvn.log" 2>&1 ||
    die "Maven could not fetch the Kafka jars (see $STATE_DIR/kafka-mvn.log); is Maven Central reachable?"
  ls "$JARS.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar after Maven ran"
  rm -rf "$JARS" && mv "$JARS.tmp" "$JARS"
  sha256sum <"$pom" >"$stamp"
}

kafka_version() { ls "$JARS"/kafka_2.13-*.jar 2>/dev/null | sed -E 's/.*kafka_2\.13-(.*)\.jar/\1/' | head -1; }

write_config() {
  mkdir -p "$DIR/data" "$DIR/logs"
  cat >"$CONF" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data
num.partitions=6
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
message.max.bytes=16777216
# Tests and benchmarks leave topics behind (a 1M-record sink benchmark writes ~1 GB): data
# older than 6 h goes, and segments roll hourly so that a small topic's only segment is not
# kept for the default 7 days (56 GB of leftovers once filled this box's disk).
log.retention.hours=6
log.roll.hours=1
log.segment.bytes=268435456
CONF
  cat >"$DIR/log4j2.yaml" <<'CONF'
Configuration:
  Appenders:
    File:
      name: file
      fileName: "${sys:kafka.logs.dir}/server.log"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
CONF
}

jvm() {
  java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$DIR/logs" -Dlog4j2.configurationFile="$DIR/log4j2.yaml" \
    -cp "$JARS/*" "$@"
}

up() {
  if pid_alive "$PIDFILE" "$CONF"; then
    log "already running (pid $(cat "$PIDFILE")) on $ADDR"
    probe kafka "$ADDR" || true
    return 0
  fi
  port_in_use "$PORT" && die "port $PORT is in use by another process; set MXTRAIL_KAFKA_PORT or stop it"
  ensure_java
  ensure_jars
  write_config
  # A broker on a full disk dies mid-test with nothing in its log; say so before starting.
  local free_kb
  free_kb=$(df -Pk "$DIR" | awk 'NR==2 {print $4}')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt 2097152 ]; then
    die "only $((free_kb / 1024)) MiB free on the disk of $DIR: Kafka needs at least 2 GiB. Old test topics live in $DIR/data; 'make down' then 'rm -rf $DIR/data' clears them"
  fi
  if [ ! -f "$DIR/data/meta.properties" ]; then
    log "formatting KRaft storage in $DIR/data"
    jvm kafka.tools.StorageTool format -t "$(cat /proc/sys/kernel/random/uuid | tr -d - | head -c 22)" \
      -c "$CONF" >"$DIR/logs/format.log" 2>&1 || die "storage format failed: see $DIR/logs/format.log"
  fi
  log "starting Apache Kafka $(kafka_version) on $ADDR (controller 127.0.0.1:$CPORT)"
  (
    cd "$DIR"
    exec setsid nohup java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -Djava.awt.headless=true -Dkafka.logs.dir="$DIR/logs" \
      -Dlog4j2.configurationFile="$DIR/log4j2.yaml" -cp "$JARS/*" kafka.Kafka "$CONF" \
      >"$DIR/logs/stdout.log" 2>&1 </dev/null
  ) &
  echo $! >"$PIDFILE"
  local i
  for i in $(seq 1 120); do
    if ! pid_running "$PIDFILE"; then
      tail -20 "$DIR/logs/stdout.log" "$DIR/logs/server.log" 2>/dev/null >&2 || true
      die "Kafka exited during start-up: see $DIR/logs/"
    fi
    if probe kafka "$ADDR" 2>/dev/null; then
      log "ready: Apache Kafka $(kafka_version) (pid $(cat "$PIDFILE")) on $ADDR"
      return 0
    fi
    sleep 0.5
  done
  die "Kafka did not answer a metadata request on $ADDR within 60 s: see $DIR/logs/"
}

down() { stop_pid "$PIDFILE" "$CONF" "kafka"; }

status() {
  if pid_alive "$PIDFILE" "$CONF"; then
    echo "kafka: running (pid $(cat "$PIDFILE")), Apache Kafka $(kafka_version), $ADDR"
    probe kafka "$ADDR" || { echo "kafka: process runs but does not answer"; return 1; }
  else
    echo "kafka: stopped"
    return 3
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
