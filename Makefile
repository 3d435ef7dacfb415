# DealDesk — `make run` serves the app, `make test` runs every test. Both set up a fresh
# machine first: each install step below runs only when its tool is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO_LEPTOS_VERSION := 0.3.10
WASM_BINDGEN_VERSION := 0.2.130
BINARYEN_VERSION     := 132.0.0
TOOLS                := $(CURDIR)/.tools

# Tools installed by cargo land in ~/.cargo/bin; wasm-opt (npm binaryen) in .tools/.
export PATH := $(TOOLS)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# No Playwright browser download: the tests drive Debian's chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: help run test bench tools release-tools browser-tools postgres unit integration e2e release clean

help:
	@echo "make run      set up and serve DealDesk on http://127.0.0.1:3000 (SQLite, offline model)"
	@echo "make test     set up and run unit, integration (SQLite + PostgreSQL) and Playwright tests"
	@echo "make release  build the optimised release bundle into target/"
	@echo "make bench    time the usage dashboard at 1,000,000 records on SQLite and PostgreSQL"

## Build tools: the wasm target, cargo-leptos and a wasm-bindgen CLI matching Cargo.lock.
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
	  || rustup target add wasm32-unknown-unknown
	@cargo leptos --version 2>/dev/null | grep -q "$(CARGO_LEPTOS_VERSION)" \
	  || cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --locked
	@wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)" \
	  || cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

## wasm-opt for --release builds (Debian's binaryen is too old and breaks hydration).
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

run: tools
	mkdir -p data
	cargo leptos serve

release: release-tools
	cargo leptos build --release

unit:
	cargo test -p app --features ssr

integration: postgres
	cargo test -p server

e2e: tools browser-tools
	cargo leptos build
	end2end/run.sh

# A test run is a one-off build: the incremental cache would only cost disk (GBs).
test: export CARGO_INCREMENTAL = 0
test: tools browser-tools postgres
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory unit; \
	$(MAKE) --no-print-directory integration; \
	$(MAKE) --no-print-directory e2e; \
	echo "make test: all suites passed in $$(( $$(date +%s) - start )) s"

## Dashboard benchmark at RECORDS (default 1,000,000) usage records, both engines.
bench: postgres
	cargo build --release -p server --bin server
	bench/run.sh

clean:
	cargo clean
	rm -rf end2end/node_modules end2end/test-results $(TOOLS)
