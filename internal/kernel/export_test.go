package kernel

import "testing"

// ForceCompat makes the sensors the test loads use the compat object
// (sensorSpec), which this kernel could do without.
func ForceCompat(t testing.TB) {
	forceCompat = true
	t.Cleanup(func() { forceCompat = false })
}

// CompatObject reports whether sensors load the compat object.
func CompatObject() bool { return compatObject() }
