# stockpile-ledger: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# Slow tests (scenario-sized property runs, later the real nats-server suites) run under
# `make test`; a plain `cargo test` stays fast and hermetic.
export STOCKPILE_SLOW_TESTS ?= 1

.PHONY: run test lint fmt build bench vectors clean demo nats browser soak fuzz

## run: the whole system on this machine — nats-server, sequencer, projector (API and
## dashboard) and the three emitting services — seeded with the demo scenario through the
## services' APIs and verified; Ctrl-C stops everything. Options go in RUN_ARGS, e.g.
## `make run RUN_ARGS="--exit-after-verify"` (scripts: exit with the verifier's code) or
## `RUN_ARGS="--dataset finland --dashboard 127.0.0.1:9090"`.
run: nats
	$(CARGO) build --release --workspace --bins
	./target/release/stockpile-run $(RUN_ARGS)

## test: every test, plus the formatting and lint gate
test: nats browser lint
	$(CARGO) build --workspace --bins   # the system tests run the service binaries as processes
	$(CARGO) test --workspace --all-targets

## soak: the deterministic simulation over many seeds (SEEDS=1000 by default); a failing
## seed is printed with the command that replays it
SEEDS ?= 1000
soak:
	STOCKPILE_SIM_SEEDS=$(SEEDS) $(CARGO) test --release -p stockpile-tests --test it simulation::every_seed -- --nocapture

## fuzz: every cargo fuzz target for FUZZ_SECONDS each (300 by default), from the seed
## corpus in fuzz/corpus; installs cargo-fuzz if missing; nightly if installed, else
## stable with RUSTC_BOOTSTRAP=1. FUZZ_TARGETS picks targets. Crashes land in
## fuzz/artifacts/<target>/ (replay: cargo fuzz run <target> <file>).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= submission entry note checkpoint tlog_proof merkle export consistency_file
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	$(CARGO) run -q -p stockpile-fuzz --example write_corpus -- fuzz/corpus
	@if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then fuzz="cargo +nightly fuzz"; \
	else fuzz="env RUSTC_BOOTSTRAP=1 cargo fuzz"; fi; \
	for target in $(FUZZ_TARGETS); do \
		echo "== $$target: $(FUZZ_SECONDS) s"; \
		$$fuzz run --fuzz-dir fuzz $$target fuzz/corpus/$$target -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; \
	done

## nats: install the pinned nats-server into .tools/nats (the tests and `run` use it)
nats:
	bash scripts/install-nats.sh

## browser: install headless Chromium for the dashboard's browser test where this machine
## allows (root with apt-get); elsewhere it says why not and the test is skipped
browser:
	bash scripts/install-chromium.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --release -p stockpile-cli

## bench: every figure of docs/performance.md in one run, each printed with its target and
## written to target/bench/results.json — (a) raw JetStream publish, (b) end-to-end ingest
## and the sequencer alone, (c) Ed25519 batch verification, (d) stockpile verify and its
## peak memory at two sizes, (e) projection rebuild, (f) inclusion proofs at 1M and 10M,
## (g) query latency under load. Figures are printed, never asserted. Exports are cached
## in target/bench. BENCH_ARGS="--quick" for smaller sizes, "--only ingest,verify" for some.
bench: nats
	$(CARGO) build --release --workspace --bins
	./target/release/stockpile-bench $(BENCH_ARGS)

## vectors: regenerate the committed corpus of corrupted ledgers in tests/vectors
vectors:
	STOCKPILE_BLESS=1 $(CARGO) test -p stockpile-tests --test it corpus::corpus_files_are_what_the_generator_makes

clean:
	$(CARGO) clean
