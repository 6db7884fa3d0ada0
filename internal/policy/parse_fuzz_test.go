package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

// FuzzParseValidate feeds bytes through Parse, Validate, Supported and, for
// what they accept, Compile, the YAML-to-kernel-table compiler: none may
// panic, every problem they report must name a field, and what compiles
// must fit the kernel's tables. Seeds are the
// Tetragon examples (when shared/ is beside the repository) and testdata.
//
//	go test ./internal/policy -run '^$' -fuzz FuzzParseValidate -fuzztime 60s
func FuzzParseValidate(f *testing.F) {
	var seeds []string
	if root, err := os.Getwd(); err == nil {
		for dir := root; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				ex, _ := filepath.Glob(filepath.Join(dir, "..", "shared", "policies", "tetragon-examples", "*.yaml"))
				seeds = append(seeds, ex...)
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	td, _ := filepath.Glob(filepath.Join("testdata", "dir", "*.y*ml"))
	seeds = append(seeds, td...)
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(header + "spec:\n  kprobes:\n  - call: sys_openat\n    syscall: true\n    args: [{index: 1, type: string}]\n    selectors:\n    - matchArgs: [{index: 1, operator: Prefix, values: [/etc]}]\n      matchActions: [{action: Sigkill}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("---\n---\nkind: Pod\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range policy.ParseDocuments(data, "fuzz.yaml") {
			for _, e := range d.Errors {
				if e.Reason == "" || e.Source != "fuzz.yaml" || e.Document < 1 {
					t.Errorf("parse error without reason or location: %+v", e)
				}
			}
			if d.Policy == nil {
				continue
			}
			verr, serr := policy.Validate(d.Policy), policy.Supported(d.Policy)
			if verr == nil && serr == nil {
				checkCompile(t, d.Policy)
			}
			for _, err := range []error{verr, serr} {
				if err == nil {
					continue
				}
				var fe policy.FieldErrors
				if !errors.As(err, &fe) || len(fe) == 0 {
					t.Fatalf("error %v is not a non-empty FieldErrors", err)
				}
				for _, e := range fe {
					if e.Path == "" || e.Reason == "" {
						t.Errorf("problem without path or reason: %+v", e)
					}
				}
			}
		}
		_, _ = policy.Parse(data, "fuzz.yaml")
	})
}

// checkCompile compiles an accepted policy: a refusal must name its field,
// and a program must fit the kernel's tables (bpf/hooks.h).
func checkCompile(t *testing.T, p *policy.TracingPolicy) {
	prog, err := policy.Compile(p)
	if err != nil {
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ce *policy.CompileError
			if !errors.As(e, &ce) || ce.Path == "" || ce.Reason == "" {
				t.Errorf("compile refusal without path or reason: %v", e)
			}
		}
		return
	}
	for _, h := range prog.Hooks {
		if len(h.Args) > 5 || len(h.Selectors) > 5 || len(h.Selectors) == 0 && !h.Enforcer {
			t.Errorf("%s: %d args, %d selectors do not fit the kernel table", h.Path, len(h.Args), len(h.Selectors))
		}
		for _, s := range h.Selectors {
			if len(s.Filters) > 5 || len(s.RetFilters) > 2 || len(s.PIDs) > 4 || slices.ContainsFunc(s.PIDs, func(p policy.PIDMatch) bool { return len(p.Values) > 8 }) {
				t.Errorf("%s: a selector does not fit the kernel table: %+v", h.Path, s)
			}
			for _, f := range append(s.Filters, s.RetFilters...) {
				if len(f.Ints) > 8 {
					t.Errorf("%s: %d integer values", h.Path, len(f.Ints))
				}
			}
		}
	}
}
