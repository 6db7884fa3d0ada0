package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/vigilsec/vigil/internal/privfile"
)

// ModesFile is where `vigil policy mode` keeps the modes it set, beside the
// collector's status file: a running policy is switched between monitor and
// enforce without editing its source, as `tetra tracingpolicy set-mode`
// does, and the switch outlives a restart of the collector.
func ModesFile(statusFile string) string {
	return filepath.Join(filepath.Dir(statusFile), "policy-modes.json")
}

// Modes maps a policy's name (namespace/name for a namespaced one) to the
// mode it runs in whatever its policy-mode option says.
type Modes map[string]string

type modesFile struct {
	Policies Modes `json:"policies"`
}

// ReadModes reads a modes file; a missing one sets no mode. The file
// decides whether enforcement happens, so one that another user could have
// written is refused.
func ReadModes(path string) (Modes, error) {
	if _, err := privfile.Check(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return Modes{}, nil
	}
	if err != nil {
		return nil, err
	}
	var f modesFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for name, mode := range f.Policies {
		if mode != ModeEnforce && mode != ModeMonitor {
			return nil, fmt.Errorf("%s: policy %q: mode %q, want enforce or monitor", path, name, mode)
		}
	}
	if f.Policies == nil {
		f.Policies = Modes{}
	}
	return f.Policies, nil
}

// WriteModes replaces the modes file, atomically.
func WriteModes(path string, m Modes) error {
	data, err := json.MarshalIndent(modesFile{Policies: m}, "", "  ")
	if err != nil {
		return err
	}
	return privfile.WriteFile(path, append(data, '\n'))
}

// SetMode sets p's policy-mode option to mode (ModeEnforce or ModeMonitor).
func SetMode(p *TracingPolicy, mode string) {
	p.Spec.Options = slices.DeleteFunc(p.Spec.Options, func(o OptionSpec) bool { return o.Name == "policy-mode" })
	p.Spec.Options = append(p.Spec.Options, OptionSpec{Name: "policy-mode", Value: mode})
}
