# Predastore — build, test, benchmark.
CARGO ?= cargo

.PHONY: build test bench run dev install clean fmt lint

# Where `make install` puts s3d and mountd.
PREFIX ?= /usr/local

# Example keys of the AWS documentation: for `make dev` on localhost only.
DEV_ACCESS_KEY ?= AKIAIOSFODNN7EXAMPLE
DEV_SECRET_KEY ?= wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

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

## run: the S3 server with its embedded defaults (https://localhost:8443, data in ./data)
run:
	$(CARGO) run --release --bin s3d

## dev: a debug server on 127.0.0.1:8443 with the example keys and data in ./data-dev
dev:
	PREDASTORE_ACCESS_KEY=$(DEV_ACCESS_KEY) PREDASTORE_SECRET_KEY=$(DEV_SECRET_KEY) \
		$(CARGO) run --bin s3d -- --host 127.0.0.1 --data-dir ./data-dev

## install: release build, then s3d and mountd into $(PREFIX)/bin (default /usr/local/bin)
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 target/release/s3d target/release/mountd $(DESTDIR)$(PREFIX)/bin/

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf ./data ./data-dev
