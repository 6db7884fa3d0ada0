#!/usr/bin/env bash
# install-deps.sh installs what a Vigil build step needs on a fresh Debian
# machine, and nothing that is already there. Run it as root (apt-get).
#
#   scripts/install-deps.sh bpf     clang-19, llvm-19 (llvm-strip-19), libbpf-dev: `make generate`
#   scripts/install-deps.sh ocb     the OpenTelemetry Collector Builder: `make dist`
#   scripts/install-deps.sh bench   bpftrace: `make bench`
#   scripts/install-deps.sh vm      qemu-system-x86, busybox-static, lz4, zstd: `make vmtest`
#
# Several groups may be given at once. It is idempotent: a second run
# installs nothing and says so.
set -euo pipefail

# OCB_VERSION must match the collector release that builder-config.yaml
# pins (core v0.165.0, stable modules v1.71.0).
OCB_VERSION=v0.165.0

usage() {
	echo "usage: $0 {bpf|ocb|bench|vm}..." >&2
	exit 2
}

# apt_install installs the Debian packages among its arguments that are not
# installed yet, running apt-get update once, and only when one is missing.
apt_updated=false
apt_install() {
	local missing=() pkg
	for pkg in "$@"; do
		if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
			missing+=("$pkg")
		fi
	done
	if ((${#missing[@]} == 0)); then
		echo "install-deps: already installed: $*"
		return
	fi
	if [[ $EUID -ne 0 ]]; then
		echo "install-deps: ${missing[*]} missing, and installing them needs root" >&2
		exit 1
	fi
	if ! $apt_updated; then
		echo "install-deps: apt-get update"
		apt-get update -qq
		apt_updated=true
	fi
	echo "install-deps: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# install_ocb installs `builder` at OCB_VERSION where `go install` puts it
# (GOBIN, else GOPATH/bin), unless that exact version is already there.
install_ocb() {
	local bindir builder have
	bindir="$(go env GOBIN)"
	bindir="${bindir:-$(go env GOPATH)/bin}"
	builder="$bindir/builder"
	if [[ -x "$builder" ]]; then
		# `builder version` prints "ocb version v0.165.0".
		have="$("$builder" version 2>&1 | awk '/version/ {v = $NF} END {print v}')" || have=""
		if [[ "$have" == "$OCB_VERSION" ]]; then
			echo "install-deps: already installed: $builder $OCB_VERSION"
			return
		fi
		echo "install-deps: $builder is ${have:-of unknown version}, want $OCB_VERSION"
		# go install refuses to overwrite a file it did not build.
		rm -f "$builder"
	fi
	echo "install-deps: installing go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION into $bindir"
	go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
}

(($# > 0)) || usage
for group in "$@"; do
	case "$group" in
	bpf) apt_install clang-19 llvm-19 libbpf-dev ;;
	ocb) install_ocb ;;
	bench) apt_install bpftrace ;;
	# vm: QEMU boots the Debian kernels, busybox-static is the guest's
	# userland, lz4 (6.1) and zstd (6.12+) unpack the kernel images, the
	# keyring checks the suites the kernels come from.
	vm) apt_install qemu-system-x86 busybox-static lz4 zstd xz-utils debian-archive-keyring ;;
	*) usage ;;
	esac
done
