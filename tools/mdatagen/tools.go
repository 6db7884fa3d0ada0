//go:build tools

// Package tools pins mdatagen, and the goimports that completes the imports
// of what it generates (its test templates leave out the metadata package,
// as the collector's own `make fmt` puts it in), for `go build`
// (scripts/install-deps.sh mdatagen).
package tools

import (
	_ "go.opentelemetry.io/collector/cmd/mdatagen"
	_ "golang.org/x/tools/cmd/goimports"
)
