package kernel_test

import (
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
)

func TestProbeFindsWhatTheSensorUses(t *testing.T) {
	testenv.RequireBPF(t)
	fs := kernel.Probe()
	// LoadSensor worked on this kernel (the other tests), so what it uses
	// must be reported as available.
	s, err := kernel.LoadSensor(kernel.SensorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{kernel.FeatureBTF, kernel.FeatureRingBuf, kernel.FeatureSendSignal} {
		if !fs.Has(name) {
			t.Errorf("%s reported missing on a kernel that runs the sensor", name)
		}
	}
	// The object with bpf_loop loaded, or the compat one where it is
	// missing (before 5.17).
	if !fs.Has(kernel.FeatureBPFLoop) && !kernel.CompatObject() {
		t.Errorf("bpf_loop reported missing, and the sensor loaded the object that calls it")
	}
	if s.Mechanism() == kernel.MechanismTPBTF && !fs.Has(kernel.FeatureTPBTF) {
		t.Errorf("tp_btf reported missing while the sensor attached with it")
	}
	for _, m := range fs.Mechanisms() {
		if (m.Err == nil) == (m.Mechanism == "") {
			t.Errorf("%s: mechanism %q and error %v: exactly one must be set", m.Hook, m.Mechanism, m.Err)
		}
	}
}
