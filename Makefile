# mxtrail — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO            ?= go
GO_MIN        := 1.26
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME      ?= 2m
FUZZTIME_TEST ?= 3s
BIN           := bin/mxtrail
VERSION       := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# The local stack's addresses (deploy/local); tests read them from the environment.
export MXTRAIL_KAFKA_BROKERS   ?= 127.0.0.1:19092
export MXTRAIL_CLICKHOUSE_ADDR ?= 127.0.0.1:19000

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

.PHONY: check-go
check-go:
	@command -v $(GO) >/dev/null || { echo "make: Go $(GO_MIN) or newer is required (https://go.dev/doc/install)"; exit 1; }
	@v=$$($(GO) env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/'); \
	  if [ "$$(printf '%s\n' "$(GO_MIN)" "$$v" | sort -V | head -1)" != "$(GO_MIN)" ]; then \
	    echo "make: Go $(GO_MIN) or newer is required, found $$v"; exit 1; fi

.PHONY: build
build: check-go ## build bin/mxtrail
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/mxtrail

.PHONY: up
up: check-go ## install (when missing) and start Kafka, ClickHouse and the chdb venv
	bash deploy/local/stack.sh up

.PHONY: down
down: ## stop the local Kafka and ClickHouse started by `make up`
	bash deploy/local/stack.sh down

.PHONY: status
status: ## show the local stack
	bash deploy/local/stack.sh status

# The race-enabled run sends 20k records through the sink's end-to-end test; the issue's full
# 1M-record case runs once more without the race detector (~40 s; under -race it needs ~10 GB
# and 2.5 min).
.PHONY: test
test: up ## start the stack, vet and staticcheck, every test (race detector), the 1M-record sink case and short fuzz runs
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) test -race -count=1 -timeout 25m ./...
	MXTRAIL_SINK_RECORDS=1000000 $(GO) test -count=1 -timeout 15m -run '^TestSinkEndToEndIntegration$$' ./sink/clickhouse
	bash scripts/fuzz.sh $(FUZZTIME_TEST)

.PHONY: fuzz
fuzz: check-go ## run every fuzz target for FUZZTIME (default 2m) each
	bash scripts/fuzz.sh $(FUZZTIME)

# make bench: `mxtrail bench` (the whole pipeline on the real local Kafka and ClickHouse, each
# stage its own process; writes bench/results/ and the README table), then the Go benchmarks:
# the heavy ones (real servers, 1M-line fixtures) once each, the others for BENCHTIME.
BENCH_LINES     ?= 2000000
BENCH_FLAGS     ?= --update-readme
BENCHTIME       ?= 1s
BENCH_HEAVY     := Integration|ShipFile1M|EnrichKafka|Generate

.PHONY: bench
bench: build up ## measure the pipeline end to end (bench/results, README), then the Go benchmarks
	./$(BIN) bench --lines $(BENCH_LINES) $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench '$(BENCH_HEAVY)' -benchtime 1x -benchmem -count=1 -timeout 30m ./...
	$(GO) test -run '^$$' -bench . -skip '$(BENCH_HEAVY)' -benchtime $(BENCHTIME) -benchmem -count=1 -timeout 30m ./...

.PHONY: lint
lint: check-go ## go vet and staticcheck (pinned)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# `mxtrail run` brings its own embedded broker: only ClickHouse is started, and the exported
# broker address (for the tests' real Kafka) is dropped. RUN_FLAGS passes flags, e.g.
# RUN_FLAGS='--once' or RUN_FLAGS='--logs "/var/log/maillog*" --year 2024'.
RUN_FLAGS ?=
.PHONY: run
run: build ## the whole pipeline on sample data (see README)
	bash deploy/local/stack.sh up clickhouse
	env -u MXTRAIL_KAFKA_BROKERS ./$(BIN) run $(RUN_FLAGS)

.PHONY: clean
clean: ## remove build output (not the stack's caches: see `make down`, .cache/)
	rm -rf bin
