#!/usr/bin/env bash
# vmlinux-h.sh writes bpf/vmlinux_arm64.h, the kernel types the arm64 BPF
# object is compiled against, from a Debian arm64 kernel's BTF:
#
#   scripts/vmlinux-h.sh [PACKAGE=VERSION SUITE]
#
# The default is the kernel bpf/vmlinux.h names. The package is fetched with
# apt-get through a sources list and state of its own (the machine's apt
# configuration is not touched), its Image is uncompressed, and
# scripts/btfblob copies the BTF out of it for bpftool.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pkg=${1:-linux-image-6.12.118+deb13-cloud-arm64=6.12.118-1}
suite=${2:-trixie-security}
mirror=http://deb.debian.org/debian
[[ $suite == *-security ]] && mirror=http://deb.debian.org/debian-security

"$root/scripts/install-deps.sh" bpftool
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/empty" "$work/lists/partial" "$work/cache/archives/partial" "$work/state"
echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$work/sources.list"
opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/empty"
	-o "Dir::Etc::Parts=$work/empty" -o "Dir::State=$work/state" -o "Dir::State::Lists=$work/lists"
	-o "Dir::State::Status=/dev/null" -o "Dir::Cache=$work/cache" -o "APT::Architectures=arm64"
	-o "Acquire::Languages=none" -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" -q update >/dev/null
(cd "$work" && apt-get "${opts[@]}" -q download "${pkg%%=*}:arm64=${pkg#*=}" >/dev/null)
dpkg-deb -x "$work"/*.deb "$work/x"
image=$(ls "$work"/x/boot/vmlinuz-*)
(cd "$root" && go run ./scripts/btfblob "$image") >"$work/vmlinux.btf"
bpftool btf dump file "$work/vmlinux.btf" format c >"$root/bpf/vmlinux_arm64.h"
echo "vmlinux-h: bpf/vmlinux_arm64.h from ${pkg} (${suite})"
