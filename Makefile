# DealDesk — `make run` serves the app, `make test` runs every test. Both set up a fresh
# machine first: each install step below runs only when its tool is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO_LEPTOS_VERSION := 0.3.10
BINARYEN_VERSION     := 132.0.0
TOOLS                := $(CURDIR)/.tools
# Bounded fuzzing inside `make test` (cases per target); `make fuzz` runs a long campaign.
FUZZ_CASES           ?= 3000

# The wasm step after cargo (tools/wasm-bundle: the splitter and wasm-bindgen, built from
# its own lock file) lands in .tools/bin; cargo-leptos in ~/.cargo/bin; wasm-opt (npm
# binaryen) in .tools/.
WASM_BUNDLE          := $(TOOLS)/bin/dealdesk-wasm-bundle
export PATH := $(TOOLS)/bin:$(TOOLS)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# No Playwright browser download: the tests drive Debian's chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
# Every build erases Leptos' view types (`--cfg erase_components`, set for all cargo
# commands in .cargo/config.toml): faster to compile, a smaller release wasm, and the
# release runs the code the tests run.

.PHONY: help run dev test bench profile fuzz tools dev-tools release-tools browser-tools postgres \
        build checks unit integration e2e release clean

help:
	@echo "make run      set up and serve DealDesk on http://127.0.0.1:3000 (SQLite, offline model)"
	@echo "make test     set up and run unit, integration (SQLite + PostgreSQL), fuzz and Playwright tests"
	@echo "make release  build the optimised release bundle (target/release/server + target/site)"
	@echo "make bench    load (25-1,000 chat calls/s), dashboard (10,000,000 records), admission, wasm size;"
	@echo "              SQLite and PostgreSQL; compared with bench/last-run.tsv"
	@echo "make profile  where the release server's CPU goes per chat call (perf, PROFILE_RATE=250)"
	@echo "make fuzz     fuzz every parser of user and model text for longer (FUZZ_CASES=…)"
	@echo "make dev      install cargo-leptos and run 'cargo leptos watch' (rebuild on change)"

## Build tools: the wasm target and the wasm step (the splitter and the bindings generator,
## its wasm-bindgen pinned to the app's: tools/wasm-bundle/Cargo.toml).
tools: $(WASM_BUNDLE)
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
	  || rustup target add wasm32-unknown-unknown

$(WASM_BUNDLE): tools/wasm-bundle/Cargo.toml tools/wasm-bundle/Cargo.lock tools/wasm-bundle/src/main.rs
	cargo install --path tools/wasm-bundle --locked --force --root $(TOOLS) --target-dir target/tools

## cargo-leptos, only for the watch loop of `make dev` (14 minutes to compile).
dev-tools: tools
	@cargo leptos --version 2>/dev/null | grep -q "$(CARGO_LEPTOS_VERSION)" \
	  || cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --locked

## wasm-opt for release builds (Debian's binaryen is too old and breaks hydration).
release-tools: tools
	@test -x $(TOOLS)/node_modules/.bin/wasm-opt \
	  || npm install --prefix $(TOOLS) --no-audit --no-fund binaryen@$(BINARYEN_VERSION)

## Browser tests: Debian's chromium and the end2end npm packages.
browser-tools:
	@command -v chromium >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@test -d end2end/node_modules/@playwright/test || (cd end2end && npm ci --no-audit --no-fund)

## The local PostgreSQL server the integration tests use (127.0.0.1:5432, trust auth).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 \
	  || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

## The debug bundle: target/debug/server and target/site (wasm, css, assets).
build: tools
	scripts/build.sh debug

run: build
	mkdir -p data
	target/debug/server

dev: dev-tools
	mkdir -p data
	cargo leptos watch --split

release: release-tools
	scripts/build.sh release

## Structural checks of the source tree (imports, layering).
checks:
	scripts/check-layers.sh

# Both suites build with one feature set, that of the app and the server together with
# their test dependencies, which `make build` also gets (server/Cargo.toml, getrandom):
# the crates they share compile once, not once per suite (the server asks more of hyper,
# tracing, sqlx, … than the app's unit tests alone). Cargo's unit graph for `make test`:
# 496 compilations, 548 with a feature set per suite.
TEST_CRATES := -p app -p server --no-default-features --features app/ssr

unit:
	FUZZ_CASES=$(FUZZ_CASES) cargo test $(TEST_CRATES) --lib

integration: postgres
	cargo test $(TEST_CRATES) --bins --test integration

# bench-load carries the fake Claude the browser tests' online server talks to.
e2e: build browser-tools
	cargo build -p server --bin bench-load
	end2end/run.sh

fuzz:
	FUZZ_CASES=$${FUZZ_CASES:-200000} cargo test -p app --features ssr --release fuzz -- --nocapture

# A test run is a one-off build: the incremental cache would only cost disk (GBs).
test: export CARGO_INCREMENTAL = 0
# A failing test prints its message and file:line without a backtrace, so the message
# stays next to the summary at the end of the output (where CI's excerpt shows it).
test: export RUST_BACKTRACE = 0
# The browser and its npm packages install (mostly download and unpack) in the background
# while the tools and the tests compile; the browser tests wait for them.
test: postgres
	@start=$$(date +%s); mkdir -p target; \
	$(MAKE) --no-print-directory browser-tools >target/browser-tools.log 2>&1 & browser=$$!; \
	$(MAKE) --no-print-directory tools; \
	setup=$$(( $$(date +%s) - start )); \
	$(MAKE) --no-print-directory checks; \
	$(MAKE) --no-print-directory unit; \
	$(MAKE) --no-print-directory integration; \
	wait $$browser || { cat target/browser-tools.log; echo "make test: installing the browser tools failed" >&2; exit 1; }; \
	$(MAKE) --no-print-directory e2e; \
	echo "make test: all suites passed in $$(( $$(date +%s) - start )) s ($$setup s of it installing the build tools)"

## Every benchmark in one run, both engines (bench/run.sh says what and how long):
## RECORDS (default 10,000,000), BENCH_RATES (25,250,500,1000), BENCH_SECONDS (10),
## BENCH_STEPS (load,dashboard,admission: fewer steps leave bench/last-run.tsv as it is).
bench: postgres release
	cargo build --release -p server --bin bench-load
	bench/run.sh

## Samples the release server with perf under PROFILE_RATE (250) calls a second, both
## engines, and prints the CPU per call by stage and kind (bench/profile.py); folded
## stacks for a flame graph in target/profile/. perf is Debian's linux-perf.
profile: postgres release
	@command -v perf >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf; }
	cargo build --release -p server --bin bench-load
	BENCH_STEPS=profile bench/run.sh

clean:
	cargo clean
	rm -rf end2end/node_modules end2end/test-results $(TOOLS)
