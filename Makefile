# Predastore — build, test, benchmark.
CARGO ?= cargo

.PHONY: build test bench run dev clean fmt lint

## build: release build of every binary
build:
	$(CARGO) build --workspace --release

## test: the whole test suite (what CI runs)
test:
	$(CARGO) build --workspace --examples
	$(CARGO) test --workspace --lib --tests --benches

## bench: criterion benchmarks of the engine next to the machine's own limits
bench:
	$(CARGO) bench -p predastore-engine --bench engine

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf ./data
