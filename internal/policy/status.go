package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/vigilsec/vigil/internal/privfile"
)

// DefaultStatusFile is where the ebpf receiver reports its policies unless
// configured otherwise (status_file), and where `vigil policy status` looks.
const DefaultStatusFile = "/var/run/vigil/policies.json"

// Status is what a running collector knows of one policy, as `vigil policy
// status` shows it.
type Status struct {
	Name   string `json:"name"` // namespace/name for namespaced policies
	Source string `json:"source"`
	// Running is set while a version of the policy is in the kernel.
	Running bool `json:"running"`
	// Mode is the running version's policy-mode: enforce or monitor.
	Mode string `json:"mode,omitempty"`
	// Hooks says how each hook of the running version is attached.
	Hooks []HookStatus `json:"hooks,omitempty"`
	// Error is why the last version read could not run; the previous
	// version, if any, keeps running.
	Error string `json:"error,omitempty"`
}

// HookStatus is one hook of a running policy and how it is attached.
type HookStatus struct {
	Path      string `json:"path"`
	Mechanism string `json:"mechanism"`
}

// StatusReport is the content of the collector's policy status file.
type StatusReport struct {
	Updated  time.Time `json:"updated"`
	Policies []Status  `json:"policies"`
}

// WriteStatusFile replaces path with r, atomically: a reader sees the old
// report or the new one, never half of one. The file is root's alone
// (privfile.WriteFile): statuses tell which files and calls are watched,
// which is worth knowing to whoever wants to avoid them.
func WriteStatusFile(path string, r StatusReport) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := privfile.WriteFile(path, append(data, '\n')); err != nil {
		return fmt.Errorf("policy status file: %w", err)
	}
	return nil
}

// ReadStatusFile reads a report WriteStatusFile wrote.
func ReadStatusFile(path string) (StatusReport, error) {
	var r StatusReport
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
