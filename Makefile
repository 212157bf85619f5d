# tollgate: `make run` to serve on :3000, `make test` to run every test.
CARGO ?= cargo
DATA ?= data
VENV ?= .venv

.PHONY: run build release test deps test-rust test-python test-ui ui-screenshots lint fmt openapi bench e2e

run: ## build and start the server on ./data, port 3000
	$(CARGO) build --release
	GF_PATHS_DATA=$(DATA) ./target/release/tollgate server

build:
	$(CARGO) build --release

release: ## the binary to ship: the release build, profile-guided (target/release-pgo/tollgate)
	./bench/pgo.sh

test: deps test-rust test-python test-ui ## every test, after installing what they need

deps: ## what the tests need and is missing: Debian packages (as root), Python venvs, Node packages
	./tests/deps.sh

test-rust: deps
	$(CARGO) test --all-targets

test-python: deps ## real clients against the real binary: grafana-client, grafana-api-sdk, ansible, generated clients, schemathesis
	$(CARGO) build --release
	./tests/python/run.sh

test-ui: deps ## the admin UI in headless chromium (playwright-core), against the release binary
	$(CARGO) build --release
	./tests/ui/run.sh

e2e: test-ui ## alias: the browser tests

ui-screenshots: test-ui ## refresh the README's UI pictures from the UI test's screenshots
	mkdir -p docs/screenshots
	cp target/ui-screenshots/overview-1280.png target/ui-screenshots/license-1280.png docs/screenshots/

lint:
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

fmt:
	$(CARGO) fmt

openapi: ## rewrite the committed OpenAPI document
	$(CARGO) run --quiet -- openapi > openapi/tollgate.json

bench: release ## wrk against the shipped (PGO) binary next to a bare poem server; divan for encryption
	BENCH_BIN=target/release-pgo/tollgate ./bench/run.sh
	$(CARGO) bench --bench encryption --no-run
	# Pinned to one core, many samples: single runs on this VM drift by 30% otherwise.
	taskset -c 1 $(CARGO) bench --bench encryption -- --sample-count 3000 --sample-size 50 service raw
	$(CARGO) bench --bench encryption -- reencrypt
