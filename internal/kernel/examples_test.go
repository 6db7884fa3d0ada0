package kernel_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// corpusMarker starts the line logged for each policy of the corpus; the
// VM lane gathers them from every kernel into docs/tetragon-examples-kernels.md.
const corpusMarker = "vigil-corpus: "

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
			// One line per policy for the VM lane's per-kernel table
			// (vmtest -corpus-doc), whatever the outcome.
			outcome := func(format string, args ...any) {
				t.Logf("%s%s\t%s\t%s", corpusMarker, filepath.Base(f), p.Metadata.Name, fmt.Sprintf(format, args...))
			}
			if policy.Validate(p) != nil || policy.Supported(p) != nil {
				outcome("-")
				continue
			}
			prog, err := policy.Compile(p)
			if err != nil {
				outcome("-")
				continue
			}
			ph, err := s.InstallPolicy(prog, nil)
			if errors.Is(err, kernel.ErrMissingFeature) {
				outcome("refused: %v", err)
				continue
			}
			if errors.Is(err, fs.ErrNotExist) {
				// A uprobe or USDT example on a binary of its author's.
				outcome("not here: %v", err)
				continue
			}
			if err != nil {
				t.Errorf("%s: %s compiles but does not load: %v", filepath.Base(f), p.Metadata.Name, err)
				continue
			}
			var mechanisms []string
			for _, h := range ph.Hooks {
				if !slices.Contains(mechanisms, h.Mechanism) {
					mechanisms = append(mechanisms, h.Mechanism)
				}
			}
			outcome("loaded: %s", strings.Join(mechanisms, ", "))
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
