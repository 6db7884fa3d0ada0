// Package policies is Vigil's detection library: Tetragon TracingPolicies,
// one per file beside this one, built into otelcol-vigil so that the
// default configuration detects common attacks with nothing on disk. The
// ebpf receiver loads them when its `library` is enabled; the files are
// also plain policies, for `vigil policy validate` or a Tetragon agent.
//
// Every policy is in monitor mode (policy-mode: monitor): its enforcement
// actions are reported, not taken, until the receiver's library.enforce
// names it.
package policies // import "github.com/vigilsec/vigil/distribution/policies"

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Source is how the sources of the library's policies are named in logs
// and `vigil policy status`: "library:credential-access".
const Source = "library:"

// Names lists the library's policies, sorted; each is the name of the one
// policy of its file.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
	}
	slices.Sort(names)
	return names
}

// YAML returns the text of the named policy, false when the library has no
// such policy.
func YAML(name string) ([]byte, bool) {
	b, err := files.ReadFile(name + ".yaml")
	return b, err == nil
}
