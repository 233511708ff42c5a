# OpenSQT: every target installs what it needs itself (uv into .tools/, the venv, npm packages,
# Debian packages such as chromium) so that a fresh machine needs only `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
TOOLS := $(ROOT)/.tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export PATH := $(VENV)/bin:$(ROOT)/node_modules/.bin:$(PATH)

.PHONY: help bootstrap venv node deps-debian deps-go generate check-generated lint typecheck buf-lint buf-breaking \
        pytest ts-build ts-test live-page test bench demo clean capabilities

help:
	@echo "make demo   - paper trading on the simulated venue (no credentials needed)"
	@echo "make test   - everything CI runs: lint, types, contracts checks, all tests"
	@echo "make bench  - benchmarks (medians, ratios to peers)"
	@echo "make generate - regenerate contract code (Python, TypeScript, Go)"
	@echo "make capabilities - refresh docs/capabilities.md from the conformance suites"

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv

bootstrap: $(if $(findstring $(TOOLS),$(UV)),$(TOOLS)/bin/uv)

venv: bootstrap
	$(UV) sync --frozen --all-packages

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

node: node_modules/.installed

# Debian packages the browser tests need (chromium); installs only when missing.
deps-debian:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Go code of the contracts: Debian's toolchain, protoc plugins and the Go protobuf/gRPC sources that the
# generated code compiles against (GOPATH mode, no module downloads). Installs only when missing.
deps-go:
	@command -v go >/dev/null 2>&1 && command -v protoc-gen-go >/dev/null 2>&1 \
	  && command -v protoc-gen-go-grpc >/dev/null 2>&1 && test -d /usr/share/gocode/src/google.golang.org/grpc || { \
	  echo "installing Debian Go packages"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    golang-go protoc-gen-go protoc-gen-go-grpc golang-google-protobuf-dev golang-google-grpc-dev >/dev/null; }

# Contracts: Python (grpcio-tools + mypy-protobuf), TypeScript (protoc-gen-es via buf) and Go (Debian's
# protoc-gen-go via buf), then the shared test vectors (Python writes its vectors first; Node re-encodes them).
generate: venv node deps-go
	$(PY) scripts/gen_python.py
	$(ROOT)/node_modules/.bin/buf generate cqc/proto --template cqc/buf.gen.yaml
	rm -rf cqc/go/cqc && $(ROOT)/node_modules/.bin/buf generate cqc/proto --template cqc/buf.gen.go.yaml
	rm -rf cqc/typescript/dist && cd cqc/typescript && $(ROOT)/node_modules/.bin/tsc -p tsconfig.json
	CQC_UPDATE_VECTORS=1 $(PY) -m pytest -q -p no:cacheprovider cqc/tests/test_cqc_messages.py
	CQC_UPDATE_VECTORS=1 node --test cqc/typescript/dist/test/

check-generated: venv node deps-go
	$(PY) scripts/check_generated.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy $(wildcard cqc/tests cqvx/src cqvx/tests opensqt/src opensqt/tests benchmarks scripts examples) conftest.py

buf-lint: node
	$(ROOT)/node_modules/.bin/buf lint cqc/proto

buf-breaking: node
	$(ROOT)/node_modules/.bin/buf breaking cqc/proto --against cqc/baseline/image.binpb

pytest: venv node deps-go deps-debian ts-build live-page
	$(PY) -m pytest -q -p no:cacheprovider
	$(PY) scripts/check_capabilities.py

# A clean build, so that no compiled file of a deleted proto or test lingers in dist/.
ts-build: node
	rm -rf cqc/typescript/dist
	cd cqc/typescript && $(ROOT)/node_modules/.bin/tsc -p tsconfig.json

# The live page (docs/live.md): esbuild bundles opensqt/web/live/ with lightweight-charts from npm into the
# package's static/ directory, which the live server serves (the build output is not committed).
LIVE_STATIC := opensqt/src/opensqt/live/static
live-page: node
	mkdir -p $(LIVE_STATIC)
	$(ROOT)/node_modules/.bin/esbuild opensqt/web/live/live.js --bundle --minify --format=esm \
	  --target=es2020 --log-level=warning --outfile=$(LIVE_STATIC)/live.js
	cp opensqt/web/live/index.html opensqt/web/live/live.css $(LIVE_STATIC)/

# Tests are TypeScript in cqc/typescript/test/, compiled by ts-build into cqc/typescript/dist/test/.
ts-test: ts-build
	node --test cqc/typescript/dist/test/

test: venv node lint typecheck buf-lint buf-breaking check-generated ts-test pytest

# The capability matrix: rerun every conformance suite into a fresh build/capabilities.md and commit
# the copy in docs/ (make test fails while they differ).
capabilities: venv
	rm -f build/capabilities.md
	$(PY) -m pytest -q -p no:cacheprovider -k Conformance cqvx/tests opensqt/tests
	cp build/capabilities.md docs/capabilities.md

bench: venv
	$(PY) benchmarks/run_all.py

demo: venv live-page
	$(VENV)/bin/opensqt paper

clean:
	rm -rf .venv .tools node_modules .mypy_cache .ruff_cache .pytest_cache
