package kernel_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// TestTetragonExamplesLoadOnThisKernel installs every example of the
// compatibility corpus that compiles (docs/tetragon-examples.md lists them
// as accepted): each must load into this kernel and unload again, or be
// refused naming the kernel feature it lacks.
func TestTetragonExamplesLoadOnThisKernel(t *testing.T) {
	testenv.RequireBPF(t)
	dir, _ := filepath.Abs("../../../shared/policies/tetragon-examples")
	if _, err := os.Stat(dir); err != nil {
		testenv.Unavailable(t, "the corpus is not beside the repository: %v", err)
	}
	files, err := policy.PolicyFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kernel.LoadSensor(kernel.SensorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	loaded := 0
	for _, f := range files {
		policies, _ := policy.ParseFile(f)
		for _, p := range policies {
			if policy.Validate(p) != nil || policy.Supported(p) != nil {
				continue
			}
			prog, err := policy.Compile(p)
			if err != nil {
				continue
			}
			ph, err := s.InstallPolicy(prog, nil)
			if errors.Is(err, kernel.ErrMissingFeature) {
				t.Logf("%s: %s refused on this kernel: %v", filepath.Base(f), p.Metadata.Name, err)
				continue
			}
			if err != nil {
				t.Errorf("%s: %s compiles but does not load: %v", filepath.Base(f), p.Metadata.Name, err)
				continue
			}
			loaded++
			if err := s.RemovePolicy(ph); err != nil {
				t.Errorf("%s: removing %s: %v", filepath.Base(f), p.Metadata.Name, err)
			}
		}
	}
	if loaded == 0 {
		t.Fatal("no example loaded")
	}
	t.Logf("%d examples loaded and unloaded", loaded)
}
