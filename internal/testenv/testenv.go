// Package testenv decides whether tests that need the real kernel can run.
//
// Outside CI a machine without the needed privilege or kernel feature skips
// those tests with the reason; under CI=true the same condition fails them, so
// that a CI machine that lost a capability cannot pass by skipping.
package testenv

import (
	"os"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test outside CI and fails it under CI.
func Unavailable(tb testing.TB, reason string, args ...any) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("CI=true and this test cannot run: "+reason, args...)
	}
	tb.Skipf("skipped (set CI=true to make this a failure): "+reason, args...)
}

// RequireBPF makes sure the process can load BPF programs against kernel BTF.
func RequireBPF(tb testing.TB) {
	tb.Helper()
	if err := kernel.CheckPrerequisites(); err != nil {
		Unavailable(tb, "%v", err)
	}
}

// RequireRoot makes sure the process runs as root, for tests that act as
// another user (chown, setuid) to check what root refuses.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Unavailable(tb, "needs root (euid %d)", os.Geteuid())
	}
}
