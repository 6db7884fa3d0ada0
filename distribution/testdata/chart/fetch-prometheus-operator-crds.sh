#!/usr/bin/env bash
# Puts prometheus-operator's module (its CRDs are in
# example/prometheus-operator-crd) into the Go module cache, where
# distribution/chart_test.go finds the ServiceMonitor, PodMonitor and
# PrometheusRule CRDs to apply the chart's monitors and rules against. Run once per machine, online; the
# tests then run offline. The version is promOperatorVersion in
# chart_test.go. Prints the directory of the CRDs.
set -euo pipefail
version="${1:-v0.85.0}"
# Outside any module, so no go.mod is touched.
cd "$(mktemp -d)"
dir="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
test -n "$dir" || { echo "fetch-prometheus-operator-crds: go mod download failed" >&2; exit 1; }
ls "$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
	"$dir/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" \
	"$dir/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" >/dev/null
echo "$dir/example/prometheus-operator-crd"
