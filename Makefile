# Sluice: two commands on a fresh machine.
#   make run    build everything (plugins included) and start the proxy in
#               front of the built-in mock provider, offline
#   make test   the whole test suite
#   make bench  end-to-end and micro benchmarks
SHELL := /bin/bash
.DEFAULT_GOAL := run

WASM_TARGET := wasm32-wasip2
PLUGIN_OUT  := target/plugins
# Plugins shipped as examples and used by tests; test-* are test-only.
PLUGINS := router-model-prefix router-header router-tier translator-openai-anthropic \
           redactor-pii evaluator-heuristic \
           test-router-versioned test-hostile-spin test-hostile-trap \
           test-hostile-alloc test-hostile-panic test-hostile-print test-hostile-translator \
           test-not-a-plugin
# Plugins in Python (componentize-py) and JavaScript (jco, QuickJS backend),
# built with toolchains installed under target/tools from PyPI and npm.
TOOLS    := target/tools
COMPONENTIZE_PY := $(TOOLS)/py/bin/componentize-py
CPY_PIN  := componentize-py==0.25.1
JCO      := $(TOOLS)/js/node_modules/.bin/jco
WIT      := $(wildcard wit/*.wit)
GUEST_PLUGINS := $(PLUGIN_OUT)/router_python.wasm $(PLUGIN_OUT)/router_js.wasm \
                 $(PLUGIN_OUT)/router_tier_python.wasm $(PLUGIN_OUT)/router_tier_js.wasm
RUN_DIR := target/run
# Python venv with the official SDKs, driven against the proxy by the e2e tests.
PYENV    := target/pyenv
SDK_PINS := openai==3.54.0 anthropic==2.12.0

.PHONY: setup plugins rust-plugins build run sdk-env test bench lint fmt clean

## Install what the build needs when it is missing (cmake, the wasm target).
setup:
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust from rustup"; exit 1; }
	@command -v cmake >/dev/null || { echo "installing cmake"; \
	  (apt-get update -qq && apt-get install -y -qq cmake) >/dev/null || \
	  { echo "cannot install cmake (pingora needs it); install it and retry"; exit 1; }; }
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@command -v npm >/dev/null || { echo "installing Node.js and npm"; \
	  (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null || \
	  { echo "cannot install npm (the JavaScript plugin needs it); install Node.js 20+ and retry"; exit 1; }; }

## Build every plugin component into target/plugins/.
plugins: rust-plugins $(GUEST_PLUGINS)

rust-plugins: setup
	cargo build --release --target $(WASM_TARGET) --target-dir target/wasm $(addprefix -p ,$(PLUGINS))
	cargo build --release --target $(WASM_TARGET) --target-dir target/wasm-v2 -p test-router-versioned --features v2
	@mkdir -p $(PLUGIN_OUT)
	@cp target/wasm/$(WASM_TARGET)/release/*.wasm $(PLUGIN_OUT)/
	@cp target/wasm-v2/$(WASM_TARGET)/release/test_router_versioned.wasm $(PLUGIN_OUT)/test_router_versioned_v2.wasm

$(COMPONENTIZE_PY):
	python3 -m venv $(TOOLS)/py
	$(TOOLS)/py/bin/pip install --quiet --disable-pip-version-check $(CPY_PIN)

$(JCO): plugins/router-js/package.json plugins/router-js/package-lock.json
	@mkdir -p $(TOOLS)/js
	cp $^ $(TOOLS)/js/
	cd $(TOOLS)/js && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

$(PLUGIN_OUT)/router_python.wasm: plugins/router-python/app.py $(WIT) | $(COMPONENTIZE_PY) rust-plugins
	$(COMPONENTIZE_PY) -d wit -w router componentize app -p plugins/router-python -o $@

$(PLUGIN_OUT)/router_js.wasm: plugins/router-js/router.js $(WIT) | $(JCO) rust-plugins
	$(JCO) componentize $(CURDIR)/plugins/router-js/router.js --wit $(CURDIR)/wit \
	  --world-name router --backend quickjs -o $(CURDIR)/$@

$(PLUGIN_OUT)/router_tier_python.wasm: plugins/router-tier-python/app.py $(WIT) | $(COMPONENTIZE_PY) rust-plugins
	$(COMPONENTIZE_PY) -d wit -w router componentize app -p plugins/router-tier-python -o $@

$(PLUGIN_OUT)/router_tier_js.wasm: plugins/router-tier-js/router.js $(WIT) | $(JCO) rust-plugins
	$(JCO) componentize $(CURDIR)/plugins/router-tier-js/router.js --wit $(CURDIR)/wit \
	  --world-name router --backend quickjs -o $(CURDIR)/$@

build: plugins
	cargo build --release -p sluice

## Start the mock provider and the proxy (Ctrl-C stops both).
run: build
	@mkdir -p $(RUN_DIR)/plugins.d
	@cp $(PLUGIN_OUT)/router_model_prefix.wasm $(PLUGIN_OUT)/translator_openai_anthropic.wasm $(RUN_DIR)/plugins.d/
	@test -s $(RUN_DIR)/demo.key || { \
	  target/release/sluice keys issue --data-dir $(RUN_DIR)/data --user demo --daily-cap-usd 1.00 \
	    --format json | sed -n 's/.*"secret": "\(.*\)".*/\1/p' > $(RUN_DIR)/demo.key && chmod 600 $(RUN_DIR)/demo.key; }
	@key=$$(cat $(RUN_DIR)/demo.key); \
	  echo "mock provider on 127.0.0.1:8089, proxy on 127.0.0.1:8080, admin on 127.0.0.1:9090"; \
	  echo "plugins: $(RUN_DIR)/plugins.d   policies: policies/   data: $(RUN_DIR)/data"; \
	  echo; \
	  echo "demo gateway key (user demo, \$$1.00/day; kept in $(RUN_DIR)/demo.key):"; \
	  echo "  $$key"; \
	  echo; \
	  echo "  curl -s localhost:8080/v1/chat/completions -H 'authorization: Bearer '$$key \\"; \
	  echo "    -H 'content-type: application/json' -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"; \
	  echo "  OpenAI SDK:    OpenAI(base_url=\"http://127.0.0.1:8080/v1\", api_key=\"$$key\")"; \
	  echo "  Anthropic SDK: Anthropic(base_url=\"http://127.0.0.1:8080\", api_key=\"$$key\")"; \
	  echo "  more keys:     target/release/sluice keys issue --data-dir $(RUN_DIR)/data --user alice --daily-cap-usd 0.50"; \
	  echo
	@trap 'kill $$mock 2>/dev/null' EXIT INT TERM; \
	  target/release/sluice mock-provider --listen 127.0.0.1:8089 & mock=$$!; \
	  target/release/sluice serve --config deploy/sluice.local.toml \
	    --plugins-dir $(RUN_DIR)/plugins.d --policies-dir policies --data-dir $(RUN_DIR)/data

## The venv with the pinned official Python SDKs (a no-op when already there).
sdk-env:
	@test -x $(PYENV)/bin/pip || python3 -m venv $(PYENV)
	@$(PYENV)/bin/python -c 'import sys, importlib.metadata as m; \
	  sys.exit(any(m.version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))' \
	  $(SDK_PINS) 2>/dev/null || \
	  $(PYENV)/bin/pip install --quiet --disable-pip-version-check $(SDK_PINS)

## The whole suite: unit, golden, end-to-end (real proxy, mock, components).
test: lint plugins sdk-env
	cargo build --release -p sluice
	@if cargo nextest --version >/dev/null 2>&1; then \
	  cargo nextest run --release --workspace --no-fail-fast; \
	else \
	  cargo test --release --workspace --no-fail-fast; \
	fi

## nginx (the reference proxy and the static upstream) from the distribution.
bench: plugins
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { echo "installing nginx"; \
	  (apt-get update -qq && apt-get install -y -qq nginx-light || apt-get install -y -qq nginx) >/dev/null || \
	  { echo "cannot install nginx; sluice-bench runs without its rows"; }; }
	cargo build --release -p sluice -p sluice-bench
	target/release/sluice-bench
	cargo bench -p sluice --bench ledger
	cargo bench -p sluice --bench plugin_call
	cargo bench -p sluice --bench routing
	cargo bench -p sluice --bench traces

lint: setup
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
