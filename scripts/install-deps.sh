#!/usr/bin/env bash
# install-deps.sh installs what a Vigil build step needs on a fresh Debian
# machine, and nothing that is already there. Run it as root (apt-get).
#
#   scripts/install-deps.sh bpf     clang-19, llvm-19 (llvm-strip-19), libbpf-dev: `make generate`
#   scripts/install-deps.sh bpftool bpftool: scripts/vmlinux-h.sh (bpf/vmlinux_arm64.h)
#   scripts/install-deps.sh ocb     the OpenTelemetry Collector Builder: `make dist`
#   scripts/install-deps.sh mdatagen  mdatagen and goimports (tools/mdatagen): `make generate`
#   scripts/install-deps.sh bench   bpftrace: `make bench`
#   scripts/install-deps.sh vm      qemu-system-x86 and -arm, busybox-static, lz4, zstd, gcc (and
#                                   aarch64's): `make vmtest`
#                                   (and the C targets of the uprobe tests)
#   scripts/install-deps.sh k8s     etcd, kube-apiserver and helm for the Kubernetes tests
#   scripts/install-deps.sh image   ca-certificates, whose bundle `make image` puts in the image
#   scripts/install-deps.sh podman  podman, skopeo, containerd and runc: the tests that load and
#                                   run the image as the DaemonSet runs it
#   scripts/install-deps.sh node    what k8s installs, plus kube-controller-manager,
#                                   kube-scheduler, kubelet and kubectl (built once, cached beside
#                                   kube-apiserver), containerd, runc, the CNI plugins and
#                                   busybox-static: the node lane, make e2e
#   scripts/install-deps.sh prometheus  Debian's prometheus (2.42) and promtool: the tests of
#                                   the dashboards and alert rules, make dashboards-preview
#
# Several groups may be given at once. It is idempotent: a second run
# installs nothing and says so.
set -euo pipefail

# OCB_VERSION must match the collector release that builder-config.yaml
# pins (core v0.165.0, stable modules v1.71.0).
OCB_VERSION=v0.165.0

# The Kubernetes tests run against this kube-apiserver release
# (internal/testenv.KubeVersion) and render the chart with this helm.
KUBE_VERSION=v1.37.2
HELM_VERSION=v3.22.0

usage() {
	echo "usage: $0 {bpf|ocb|mdatagen|bench|vm|k8s|image|podman|node|prometheus}..." >&2
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

# install_mdatagen builds mdatagen and goimports at the versions tools/mdatagen pins into
# GOBIN (else GOPATH/bin), unless that build is already there. `go install
# pkg@version` cannot: it asks the proxy for the module's version list,
# which the proxy does not serve for mdatagen.
install_mdatagen() {
	local root bindir stamp want
	root="$(cd "$(dirname "$0")/.." && pwd)"
	bindir="$(go env GOBIN)"
	bindir="${bindir:-$(go env GOPATH)/bin}"
	stamp="$bindir/mdatagen.sum"
	want="$(sha256sum "$root/tools/mdatagen/go.sum" | cut -d' ' -f1)"
	if [[ -x "$bindir/mdatagen" ]] && [[ -x "$bindir/goimports" ]] && [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
		echo "install-deps: already installed: $bindir/mdatagen $bindir/goimports"
		return
	fi
	echo "install-deps: building mdatagen and goimports (tools/mdatagen) into $bindir"
	mkdir -p "$bindir"
	(cd "$root/tools/mdatagen" && go build -o "$bindir/mdatagen" go.opentelemetry.io/collector/cmd/mdatagen &&
		go build -o "$bindir/goimports" golang.org/x/tools/cmd/goimports)
	echo "$want" >"$stamp"
}

# install_k8s puts kube-apiserver, etcd and helm into one directory, the
# KUBEBUILDER_ASSETS the tests read (internal/testenv.KubeAssets). Nothing
# publishes kube-apiserver as a Go module binary and no other download site
# is reachable, so it is built from k8s.io/kubernetes through the tools
# module in tools/kube-apiserver: about 25 minutes on 2 cores, once per
# machine. etcd comes from Debian (etcd-server, 3.4), which this apiserver
# accepts.
install_k8s() {
	local root assets
	root="$(cd "$(dirname "$0")/.." && pwd)"
	assets="${KUBEBUILDER_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil/k8s/$KUBE_VERSION}"
	mkdir -p "$assets"
	apt_install etcd-server
	ln -sf "$(command -v etcd)" "$assets/etcd"
	if [[ -x "$assets/kube-apiserver" ]]; then
		echo "install-deps: already built: $assets/kube-apiserver"
	else
		echo "install-deps: building kube-apiserver $KUBE_VERSION into $assets (about 25 minutes on 2 cores, once)"
		(cd "$root/tools/kube-apiserver" &&
			CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' \
				-o "$assets/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
		mv "$assets/kube-apiserver.tmp" "$assets/kube-apiserver"
	fi
	# The chart's ServiceMonitor and PodMonitor are checked against
	# prometheus-operator's own CRDs, from its module in the Go module cache.
	"$root/distribution/testdata/chart/fetch-prometheus-operator-crds.sh" >/dev/null
	# helm built by `go install` does not know its own version: a stamp does.
	if [[ -x "$assets/helm" ]] && [[ "$(cat "$assets/helm.version" 2>/dev/null)" == "$HELM_VERSION" ]]; then
		echo "install-deps: already built: $assets/helm $HELM_VERSION"
	else
		echo "install-deps: building helm $HELM_VERSION into $assets"
		GOBIN="$assets" CGO_ENABLED=0 go install -trimpath -ldflags='-s -w' "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
		echo "$HELM_VERSION" >"$assets/helm.version"
	fi
}

# install_node builds the rest of a node from the same tools module as
# kube-apiserver, into the same directory, once: about 10 minutes on 2
# cores after kube-apiserver's build (they share most packages).
install_node() {
	local root assets missing=() bin
	root="$(cd "$(dirname "$0")/.." && pwd)"
	assets="${KUBEBUILDER_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil/k8s/$KUBE_VERSION}"
	apt_install containerd runc containernetworking-plugins busybox-static iproute2 util-linux
	for bin in kube-controller-manager kube-scheduler kubelet kubectl; do
		[[ -x "$assets/$bin" ]] || missing+=("$bin")
	done
	if ((${#missing[@]} == 0)); then
		echo "install-deps: already built: kube-controller-manager kube-scheduler kubelet kubectl in $assets"
		return
	fi
	echo "install-deps: building ${missing[*]} $KUBE_VERSION into $assets (once)"
	local tmp pkgs=()
	tmp="$(mktemp -d "$assets/.build-XXXXXX")"
	for bin in "${missing[@]}"; do
		pkgs+=("k8s.io/kubernetes/cmd/$bin")
	done
	(cd "$root/tools/kube-apiserver" &&
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$tmp/" "${pkgs[@]}")
	for bin in "${missing[@]}"; do
		mv "$tmp/$bin" "$assets/$bin"
	done
	rmdir "$tmp"
}

# install_prometheus installs Debian's prometheus for its binaries only: the
# tests start their own server on a temporary configuration. The package's
# service is kept from starting during the install (a policy-rc.d that
# refuses every start, unless the machine has one already) and disabled
# after it, so no daemon is left listening on :9090.
install_prometheus() {
	if [[ "$(dpkg-query -W -f='${Status}' prometheus 2>/dev/null)" == "install ok installed" ]]; then
		echo "install-deps: already installed: prometheus"
		return
	fi
	if [[ $EUID -ne 0 ]]; then
		echo "install-deps: prometheus missing, and installing it needs root" >&2
		exit 1
	fi
	local guard=/usr/sbin/policy-rc.d
	if [[ ! -e "$guard" ]]; then
		printf '#!/bin/sh\n# install-deps: no service starts during this install\nexit 101\n' >"$guard"
		chmod 0755 "$guard"
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt_install prometheus
	# The package enables its unit (and its SysV script) even where no
	# systemd runs: disable them, and stop the unit where one does.
	if command -v systemctl >/dev/null; then
		systemctl disable prometheus.service >/dev/null 2>&1 || true
		if [[ -d /run/systemd/system ]]; then
			systemctl stop prometheus.service || true
		fi
	fi
}

(($# > 0)) || usage
for group in "$@"; do
	case "$group" in
	bpf) apt_install clang-19 llvm-19 libbpf-dev ;;
	# bpftool dumps an arm64 kernel's BTF as C: scripts/vmlinux-h.sh.
	bpftool) apt_install bpftool debian-archive-keyring ;;
	ocb) install_ocb ;;
	mdatagen) install_mdatagen ;;
	bench) apt_install bpftrace ;;
	# vm: QEMU boots the Debian kernels, busybox-static is the guest's
	# userland, lz4 (6.1) and zstd (6.12+) unpack the kernel images, the
	# keyring checks the suites the kernels come from.
	# gcc and libc6-dev (libc.a) build the C targets of the uprobe and USDT
	# tests, here and, static, for the guests; the aarch64 cross compiler
	# and libc build them for the arm64 guests, which qemu-system-arm's
	# qemu-system-aarch64 boots.
	vm) apt_install qemu-system-x86 qemu-system-arm busybox-static lz4 zstd xz-utils debian-archive-keyring gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
	k8s) install_k8s ;;
	node) install_k8s && install_node ;;
	prometheus) install_prometheus ;;
	image) apt_install ca-certificates ;;
	# podman runs the image (Debian's 4.3, with netavark and crun or
	# runc); skopeo and containerd's ctr read the archive as other tools
	# would.
	podman) apt_install podman skopeo containerd runc containernetworking-plugins ;;
	*) usage ;;
	esac
done
