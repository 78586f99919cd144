# stockpile-ledger: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# Slow tests (scenario-sized property runs, later the real nats-server suites) run under
# `make test`; a plain `cargo test` stays fast and hermetic.
export STOCKPILE_SLOW_TESTS ?= 1

.PHONY: run test lint fmt build bench vectors clean demo nats

## run: generate the demo ledgers and verify them (the services arrive with issues 3-5)
run: nats build
	@mkdir -p target/demo
	$(CARGO) run --release -q -p stockpile-cli -- generate --dataset us --seed 1 --out target/demo/us.export --trust-out target/demo/us.trust.json
	$(CARGO) run --release -q -p stockpile-cli -- verify target/demo/us.export --trust target/demo/us.trust.json

## test: every test, plus the formatting and lint gate
test: nats lint
	$(CARGO) build --workspace --bins   # the system tests run the service binaries as processes
	$(CARGO) test --workspace --all-targets

## nats: install the pinned nats-server into .tools/nats (the tests and `run` use it)
nats:
	bash scripts/install-nats.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --release -p stockpile-cli

## bench: throughput figures (printed, never asserted)
bench: build
	@mkdir -p target/bench
	$(CARGO) run --release -q -p stockpile-cli -- generate --dataset us --seed 7 --entries 1000000 --out target/bench/1m.export --trust-out target/bench/1m.trust.json
	$(CARGO) run --release -q -p stockpile-cli -- verify target/bench/1m.export --trust target/bench/1m.trust.json

## vectors: regenerate the committed corpus of corrupted ledgers in tests/vectors
vectors:
	STOCKPILE_BLESS=1 $(CARGO) test -p stockpile-tests --test it vectors::

clean:
	$(CARGO) clean
