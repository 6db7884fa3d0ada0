# Vigil — the two commands a new machine needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -mod=mod

.PHONY: all generate check-generate test unit bench dist run tools clean

all: dist

## generate: rebuild the BPF objects and their Go bindings with clang-19 (bpf2go), and each
## component's internal/metadata, documentation.md and lifecycle tests from its metadata.yaml
## (mdatagen), and the Grafana dashboards' JSON from their Go code (distribution/dashboards)
GOBIN_DIR = $(shell d="$$($(GO) env GOBIN)"; echo "$${d:-$$($(GO) env GOPATH)/bin}")
MDATAGEN = $(GOBIN_DIR)/mdatagen
METADATA := $(wildcard receiver/*/metadata.yaml processor/*/metadata.yaml exporter/*/metadata.yaml extension/*/metadata.yaml)
generate:
	scripts/install-deps.sh bpf mdatagen
	scripts/generate-bpf.sh
	# The syscall tables of each architecture, from x/sys/unix (internal/syscalls/gen).
	$(GO) generate ./internal/syscalls/
	# Go's side of the kernel ABI the objects define (policy.Op from enum filter_op).
	$(GO) generate ./internal/policy/
	for m in $(METADATA); do (cd $$(dirname $$m) && $(MDATAGEN) metadata.yaml) || exit 1; done
	# mdatagen's test templates leave the metadata package's import out.
	$(GOBIN_DIR)/goimports -w $$(for m in $(METADATA); do ls -d $$(dirname $$m)/internal/metadata*; done)
	$(GO) run ./distribution/dashboards/generate -dir distribution/dashboards

## check-generate: fail when the committed generated code differs from its sources
check-generate: generate
	@git diff --exit-code --stat -- internal/kernel/ internal/syscalls/ internal/policy/*_gen.go receiver/ processor/ exporter/ extension/ distribution/dashboards/ || \
		{ echo "committed generated code is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- 'internal/kernel/*_bpfel.*' internal/syscalls/ internal/policy/*_gen.go receiver/ processor/ exporter/ extension/ distribution/dashboards/)" || \
		{ git status --short -- 'internal/kernel/*_bpfel.*' internal/syscalls/ internal/policy/*_gen.go receiver/ processor/ exporter/ extension/ distribution/dashboards/; echo "make generate made files that are not committed"; exit 1; }

FUZZTIME ?= 30s
# The small parsers of what the node hands the agent (/proc files, a
# binary's USDT notes, kallsyms, a process's maps, a cgroup's name) cover
# their code in seconds.
FUZZTIME_SMALL ?= 10s

## test: every test on this machine (root for the kernel tests), with the distribution and
## its image built, a real kube-apiserver + etcd for the Kubernetes tests (built once,
## cached), podman to run the image as the DaemonSet runs it, and Debian's prometheus to
## evaluate the dashboards and alert rules against a running collector (and the VM lane's
## tools, whose own tests run here)
test: image
	scripts/install-deps.sh k8s podman prometheus vm
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	# The parsers of what comes from outside, each fuzzed for a bounded time:
	# the policy compiler (YAML), the ring buffer record decoder, the filters
	# event_stream clients send, then the node's files the agent reads.
	$(GO) test -run '^$$' -fuzz FuzzParseValidate -fuzztime $(FUZZTIME) ./internal/policy/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./internal/kernel/
	$(GO) test -run '^$$' -fuzz FuzzCompileFilter -fuzztime $(FUZZTIME) ./exporter/eventstreamexporter/
	$(GO) test -run '^$$' -fuzz '^FuzzParseStat$$' -fuzztime $(FUZZTIME_SMALL) ./internal/process/
	$(GO) test -run '^$$' -fuzz FuzzParseStatus -fuzztime $(FUZZTIME_SMALL) ./internal/process/
	$(GO) test -run '^$$' -fuzz FuzzStapsdtNotes -fuzztime $(FUZZTIME_SMALL) ./internal/kernel/
	$(GO) test -run '^$$' -fuzz FuzzKallsyms -fuzztime $(FUZZTIME_SMALL) ./internal/stack/
	$(GO) test -run '^$$' -fuzz FuzzParseMaps -fuzztime $(FUZZTIME_SMALL) ./internal/stack/
	$(GO) test -run '^$$' -fuzz FuzzContainerIDFromCgroup -fuzztime $(FUZZTIME_SMALL) ./internal/k8s/
	$(GO) test -run '^$$' -fuzz FuzzGnuBuildID -fuzztime $(FUZZTIME_SMALL) ./internal/engine/

## unit: the Go tests only, without building the distribution
unit:
	$(GO) test -count=1 ./...

## tools: install the pinned collector builder (ocb) that dist runs
tools:
	scripts/install-deps.sh ocb

# The distribution is built in two steps. ocb generates build/otelcol-vigil
# (main.go, components.go, and a tidy go.mod that replaces this module with
# ../../) only when builder-config.yaml or go.mod changed, since that step
# runs `go mod tidy` and downloads modules. `go build` there runs on every
# `make dist`: it picks up every change under receiver/, exporter/, internal/
# and distribution/ (config.yaml included), and the Go build cache makes it
# a no-op when nothing changed.
DIST_DIR := build/otelcol-vigil
DIST_BIN := bin/otelcol-vigil
OCB := $(shell d="$$($(GO) env GOBIN)"; echo "$${d:-$$($(GO) env GOPATH)/bin}")/builder
# run's configuration: the one embedded in the binary (distribution/config.yaml),
# or any path or URI the collector's --config takes.
RUN_CONFIG ?= vigil:default
RUN_ARGS ?=

# The architectures dist builds, each into bin/linux_<arch>/ (the image's
# platforms); bin/otelcol-vigil and bin/vigil are this machine's.
DIST_ARCHES ?= amd64 arm64
HOST_ARCH := $(shell $(GO) env GOARCH)

## dist: build the otelcol-vigil collector and the vigil CLI for each of DIST_ARCHES into
## bin/linux_<arch>/, and link this machine's as bin/otelcol-vigil and bin/vigil
dist: tools $(DIST_DIR)/.ocb-stamp
	for arch in $(DIST_ARCHES); do \
		mkdir -p bin/linux_$$arch && \
		(cd $(DIST_DIR) && GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' \
			-o $(CURDIR)/bin/linux_$$arch/otelcol-vigil .) && \
		GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' \
			-o bin/linux_$$arch/vigil ./cmd/vigil || exit 1; \
	done
	ln -f bin/linux_$(HOST_ARCH)/otelcol-vigil $(DIST_BIN)
	ln -f bin/linux_$(HOST_ARCH)/vigil bin/vigil

$(DIST_DIR)/.ocb-stamp: builder-config.yaml go.mod | tools
	@mkdir -p $(DIST_DIR)
	$(OCB) --config builder-config.yaml --skip-compilation
	@touch $@

# The image: an OCI archive of an image index, named
# ghcr.io/vigilsec/otelcol-vigil:<the chart's appVersion>. No container daemon
# and no base image: distribution/image writes it from bin/.
IMAGE_ARCHIVE := build/image/otelcol-vigil.oci.tar
IMAGE ?=

## image: build the container image from bin/ into build/image/otelcol-vigil.oci.tar
## (podman load -i, skopeo copy oci-archive:, ctr images import)
.PHONY: image image-push
image: dist
	scripts/install-deps.sh image
	$(GO) run ./distribution/image -o $(IMAGE_ARCHIVE) -platforms '$(DIST_ARCHES)'

## image-push: build the image and push it to IMAGE (host/repository:tag)
image-push: dist
	@test -n "$(IMAGE)" || { echo "usage: make image-push IMAGE=host/repository:tag"; exit 2; }
	scripts/install-deps.sh image
	$(GO) run ./distribution/image -push $(IMAGE) -platforms '$(DIST_ARCHES)'

## run: build, then run the collector as root on the embedded default config
run: dist
	$(if $(filter 0,$(shell id -u)),,sudo) $(DIST_BIN) --config $(RUN_CONFIG) $(RUN_ARGS)

## bench: two tables (root): exec, a fork+exec loop without an agent, under otelcol-vigil,
## under bpftrace; openat, an openat loop without an agent, under an empty BPF program,
## under otelcol-vigil with a policy that matches nothing, one that counts every call in the
## kernel (Count, NoPost) and one that posts every call
BENCH_TABLES ?= exec,openat
BENCH_N ?= 5000
BENCH_ROUNDS ?= 3
BENCH_OPENAT_N ?= 1000000
BENCH_ARGS ?=
bench: dist
	scripts/install-deps.sh bench
	$(GO) run ./bench -tables $(BENCH_TABLES) -agent $(DIST_BIN) \
		-n $(BENCH_N) -rounds $(BENCH_ROUNDS) -config bench/config.yaml \
		-openat-n $(BENCH_OPENAT_N) -openat-config bench/config-openat.yaml -openat-policies bench/policies \
		$(BENCH_ARGS)

## dashboards-preview: draw the dashboards' main panels as PNG into docs/dashboards (the README
## shows them), from otelcol-vigil under a workload scraped by Debian's prometheus (root, 2 minutes)
.PHONY: dashboards-preview
dashboards-preview: dist
	scripts/install-deps.sh prometheus
	$(GO) build -o build/dashboards-preview ./distribution/dashboards/preview
	$(if $(filter 0,$(shell id -u)),,sudo) build/dashboards-preview -collector $(DIST_BIN) -out docs/dashboards

## noise: the detection library's alerts per policy (root): NOISE_IDLE of an idle machine,
## then a busy, benign workload (this repository's build and unit tests, package queries,
## a compiler, git, curl to loopback); a table, like bench
NOISE_IDLE ?= 10m
.PHONY: noise
noise: dist
	$(GO) run ./bench -tables noise -agent $(DIST_BIN) -noise-idle $(NOISE_IDLE)

## e2e: the node lane: a one-node cluster built here from real parts (etcd, kube-apiserver,
## controller manager, scheduler, kubelet, containerd, runc, CNI) in a network namespace of
## its own; the chart installed on it from the image, and the user story run (root)
E2E_ARGS ?=
.PHONY: e2e
e2e: image
	scripts/install-deps.sh node
	$(GO) vet -tags e2e ./e2e/
	$(GO) test -tags e2e -count=1 -timeout 20m ./e2e/ -v $(E2E_ARGS)

## vmtest: the kernel VM lane: boots each Debian kernel of vmtest/lane.go under QEMU
## and runs the kernel tests inside it; prints a kernel x test table (no root, no KVM)
VMTEST_ARGS ?=
.PHONY: vmtest
## A full run also rewrites docs/tetragon-examples-kernels.md, which CI checks is unchanged.
vmtest:
	scripts/install-deps.sh vm
	$(GO) run ./vmtest -corpus-doc docs/tetragon-examples-kernels.md $(VMTEST_ARGS)

clean:
	rm -rf bin build
