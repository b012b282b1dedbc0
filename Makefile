# Predastore — build, test, benchmark.
CARGO ?= cargo

.PHONY: build build-cluster test bench run dev install clean fmt lint docker docker_s3d docker_compose_up \
	docker_compose_down docker_clean docker_test

# Features the tests add: cluster mode — the metadata store on etcd, the cluster crate's
# multi-node tests, s3d's cluster commands (the etcd client's build needs protoc, the tests etcd —
# both installed by .ci/run).
TEST_FEATURES ?= --features predastore-engine/etcd,predastore-cluster/etcd,s3d/cluster,mountd/cluster

# Where `make install` puts s3d and mountd.
PREFIX ?= /usr/local

# Example keys of the AWS documentation: for `make dev` on localhost only.
DEV_ACCESS_KEY ?= AKIAIOSFODNN7EXAMPLE
DEV_SECRET_KEY ?= wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

## build: release build of every binary
build:
	$(CARGO) build --workspace --release

## build-cluster: the release build with cluster mode, s3d's and mountd's (needs protobuf-compiler:
## docs/cluster.md)
build-cluster:
	$(CARGO) build --workspace --release --features s3d/cluster,mountd/cluster

## test: the whole test suite (what CI runs): every crate's tests, the engine's integration tests
## again with the metadata on etcd, then the Docker images
test:
	$(CARGO) build --workspace --examples $(TEST_FEATURES)
	$(CARGO) test --workspace --lib --tests --benches $(TEST_FEATURES)
	TEST_FEATURES="$(TEST_FEATURES)" scripts/engine-tests-on-etcd.sh
	scripts/docker-test.sh

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

## docker (= docker_s3d): images FROM scratch, no registry needed (scripts/docker-build.sh)
docker: docker_s3d

docker_s3d:
	scripts/docker-build.sh

## docker_compose_up: s3d (port 8443 on the host's loopback) and NATS, in the background
docker_compose_up: docker
	docker-compose -f docker-compose.yml up -d

docker_compose_down:
	docker-compose -f docker-compose.yml down

## docker_clean: the compose's containers and volumes (its data!), and the images
docker_clean:
	-docker-compose -f docker-compose.yml down -v --remove-orphans
	-docker image rm predastore/s3d:latest predastore/nats:latest

## docker_test: build, compose up, the aws cli against it, mountd in a container, compose down
docker_test:
	scripts/docker-test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets $(TEST_FEATURES) -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf ./data ./data-dev
