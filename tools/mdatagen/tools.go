//go:build tools

// Package tools pins mdatagen for `go build` (scripts/install-deps.sh
// mdatagen).
package tools

import (
	_ "go.opentelemetry.io/collector/cmd/mdatagen"
)
