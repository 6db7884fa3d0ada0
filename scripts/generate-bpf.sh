#!/usr/bin/env bash
# generate-bpf.sh rebuilds internal/kernel's BPF objects and their Go bindings
# (go generate ./internal/kernel/) from a copy of the sources at one fixed path.
#
# Why the copy: clang-19 orders an object's BTF types by where their debug
# metadata happens to lie in its heap, and that layout follows the lengths of
# the paths clang is handed (source, output, include directories). The same
# commit built in clones at /work/main and /tmp/a/b/c/repo gave objects whose
# BTF string and type order differed, while every program's instructions were
# equal; `make check-generate` compares bytes, so it failed in CI's clone.
# Built at one path, the bytes depend on the sources alone.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=/tmp/vigil-generate-bpf

# Two checkouts on one machine (a CI run beside a developer's tree) take turns.
exec 9>"$work.lock"
flock 9

rm -rf "$work"
mkdir -p "$work/internal"
cp -a "$root/go.mod" "$root/go.sum" "$root/bpf" "$work/"
cp -a "$root/internal/kernel" "$work/internal/"
(cd "$work" && "${GO:-go}" generate ./internal/kernel/)

# Only what the directives wrote goes back: the objects, bindings and enums.
for f in "$work"/internal/kernel/*_bpfel.o "$work"/internal/kernel/*_bpfel.go "$work"/internal/kernel/*_gen.go; do
	cmp -s "$f" "$root/internal/kernel/${f##*/}" || cp "$f" "$root/internal/kernel/"
done
rm -rf "$work"
