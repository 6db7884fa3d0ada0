package policy_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/policy"
)

// header is the start of a policy document, for tests that add a spec.
const header = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: test
`

func TestParseStrictErrorsNameFieldAndLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "misspelled operator deep in a selector",
			yaml: header + `spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args: [{index: 0, type: int}]
    selectors:
    - matchArgs:
      - {index: 0, operator: Equal, values: ["1"]}
    - matchArgs:
      - index: 0
        opertor: Equal
`,
			want: []string{"p.yaml: document 1, line 15: spec.kprobes[0].selectors[1].matchArgs[0].opertor: unknown field"},
		},
		{
			name: "every unknown field is reported, not only the first",
			yaml: header + `  color: red
spec:
  kprobe: []
  tracepoints:
  - subsystem: sched
    evnt: x
`,
			want: []string{
				"p.yaml: document 1, line 5: metadata.color: unknown field",
				"p.yaml: document 1, line 7: spec.kprobe: unknown field",
				"p.yaml: document 1, line 10: spec.tracepoints[0].evnt: unknown field",
			},
		},
		{
			name: "wrong YAML types",
			yaml: header + `spec:
  kprobes:
  - call: [sys_openat]
    syscall: "true"
    args:
      index: 0
    selectors:
    - matchPIDs:
      - operator: In
        values: [-1, 4294967296, x]
`,
			want: []string{
				"p.yaml: document 1, line 7: spec.kprobes[0].call: want a string, got a list",
				`p.yaml: document 1, line 8: spec.kprobes[0].syscall: want true or false, got the string "true"`,
				"p.yaml: document 1, line 10: spec.kprobes[0].args: want a list, got a mapping",
				"p.yaml: document 1, line 14: spec.kprobes[0].selectors[0].matchPIDs[0].values[0]: want an integer from 0 to 4294967295, got the number -1",
				"p.yaml: document 1, line 14: spec.kprobes[0].selectors[0].matchPIDs[0].values[1]: want an integer from 0 to 4294967295, got the number 4294967296",
				`p.yaml: document 1, line 14: spec.kprobes[0].selectors[0].matchPIDs[0].values[2]: want an integer from 0 to 4294967295, got the string "x"`,
			},
		},
		{
			name: "duplicate field",
			yaml: header + `spec:
  kprobes: []
  kprobes: []
`,
			want: []string{"p.yaml: document 1, line 7: spec.kprobes: duplicate field"},
		},
		{
			name: "map keys that are not words are quoted in the path",
			yaml: header + `  labels:
    app.kubernetes.io/name: [x]
spec: {}
`,
			want: []string{`p.yaml: document 1, line 6: metadata.labels["app.kubernetes.io/name"]: want a string, got a list`},
		},
		{
			name: "YAML syntax error",
			yaml: header + "spec:\n  kprobes: [\n",
			want: []string{"p.yaml: document 1, line 6: invalid YAML: did not find expected node content"},
		},
		{
			name: "a document that is not a mapping",
			yaml: "- just\n- a list\n",
			want: []string{"p.yaml: document 1, line 1: want a Kubernetes object (a mapping with apiVersion and kind), got a list"},
		},
		{
			name: "a document without kind",
			yaml: "metadata: {name: x}\nspec: {}\n",
			want: []string{"p.yaml: document 1, line 1: kind: required: a policy document has kind TracingPolicy or TracingPolicyNamespaced"},
		},
		{
			name: "errors carry the document index",
			yaml: header + "spec: {}\n---\n---\n" + header + "spec:\n  lsmhook: []\n",
			want: []string{"p.yaml: document 3, line 13: spec.lsmhook: unknown field"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tt.yaml), "p.yaml")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if !errors.Is(err, policy.ErrMalformed) {
				t.Errorf("errors.Is(err, ErrMalformed) = false")
			}
			var pe *policy.ParseError
			if !errors.As(err, &pe) || pe.Source != "p.yaml" {
				t.Errorf("errors.As(*ParseError) = %v, %+v", errors.As(err, &pe), pe)
			}
		})
	}
}

func TestParseReadsEveryField(t *testing.T) {
	src := header + `  namespace: ""
  labels: {team: sec}
  annotations: {note: "x"}
  # Read back from a cluster: dropped, not refused.
  uid: 3f1c
  resourceVersion: "42"
  generation: 2
spec:
  lists:
  - name: dups
    type: syscalls
    values: [sys_dup, sys_dup2]
  options:
  - {name: policy-mode, value: monitor}
  kprobes:
  - call: sys_write
    syscall: yes          # YAML 1.1 boolean, as Kubernetes reads it
    return: true
    message: "write to stdout"
    tags: [observability.filesystem]
    ignore: {callNotFound: true}
    args:
    - {index: 0, type: int, label: fd}
    - {index: 1, type: char_buf, sizeArgIndex: 3, returnCopy: true}
    returnArg: {index: 0, type: int}
    returnArgAction: Post
    selectors:
    - matchArgs:
      - {index: 0, operator: Equal, values: [1, 0x2]}   # numbers read as strings
      matchReturnArgs:
      - {index: 0, operator: GT, values: ["0"]}
      matchPIDs:
      - {operator: NotIn, followForks: true, isNamespacePID: true, values: [1]}
      matchBinaries:
      - {operator: In, values: [/usr/bin/bash], followChildren: true}
      matchNamespaces:
      - {namespace: Pid, operator: In, values: [host_ns]}
      matchCapabilities:
      - {type: Effective, operator: In, isNamespaceCapability: false, values: [CAP_SYS_ADMIN]}
      matchActions:
      - {action: Post, rateLimit: 1m, rateLimitScope: process, kernelStackTrace: true, userStackTrace: true}
      matchReturnActions:
      - {action: Signal, argSig: 10}
  uprobes:
  - path: /bin/bash
    symbols: [readline]
    offsets: [0x10]
`
	ps, err := policy.Parse([]byte(src), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("%d policies, want 1", len(ps))
	}
	p := ps[0]
	if p.Metadata.Labels["team"] != "sec" || p.Metadata.Annotations["note"] != "x" {
		t.Errorf("metadata = %+v", p.Metadata)
	}
	k := p.Spec.KProbes[0]
	if !k.Syscall || !k.Return || k.Ignore == nil || !k.Ignore.CallNotFound || k.ReturnArg == nil {
		t.Errorf("kprobe flags = %+v", k)
	}
	if got := k.Args[1]; got.SizeArgIndex != 3 || !got.ReturnCopy || got.Type != "char_buf" {
		t.Errorf("args[1] = %+v", got)
	}
	s := k.Selectors[0]
	if got := s.MatchArgs[0].Values; !reflect.DeepEqual(got, []string{"1", "0x2"}) {
		t.Errorf("matchArgs values = %q, want the numbers' text", got)
	}
	if got := s.MatchPIDs[0]; !got.FollowForks || !got.IsNamespacePID || got.Values[0] != 1 {
		t.Errorf("matchPIDs = %+v", got)
	}
	if got := s.MatchActions[0]; got.RateLimit != "1m" || got.RateLimitScope != "process" || !got.KernelStackTrace {
		t.Errorf("matchActions = %+v", got)
	}
	if got := s.MatchReturnActions[0]; got.ArgSig != 10 {
		t.Errorf("matchReturnActions = %+v", got)
	}
	if got := p.Spec.UProbes[0].Offsets; !reflect.DeepEqual(got, []uint64{16}) {
		t.Errorf("offsets = %v", got)
	}
	if err := policy.Validate(p); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseAnchorsAndMergeKeys(t *testing.T) {
	src := header + `spec:
  kprobes:
  - &open
    call: sys_openat
    syscall: true
    args: &args [{index: 1, type: string}]
  - <<: *open
    call: sys_open
    args: *args
`
	ps, err := policy.Parse([]byte(src), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := ps[0].Spec.KProbes
	if k[1].Call != "sys_open" || !k[1].Syscall || len(k[1].Args) != 1 || k[1].Args[0].Type != "string" {
		t.Errorf("merged kprobe = %+v", k[1])
	}
}

func TestParseDocumentsSkipsOtherObjectsAndEmptyDocuments(t *testing.T) {
	src := `# leading comment
---
apiVersion: v1
kind: Pod
metadata:
  name: bigsecret
spec:
  containers: [{name: c, image: ubuntu}]
---
---
` + header + `spec:
  kprobes: [{call: fd_install}]
---
apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata: {name: ns, namespace: default}
spec:
  kprobes: [{call: fd_install, bogus: 1}]
`
	docs := policy.ParseDocuments([]byte(src), "f.yaml")
	type summary struct {
		Index, Line int
		Kind, Name  string
		Policy      bool
		Errors      int
	}
	var got []summary
	for _, d := range docs {
		got = append(got, summary{d.Index, d.Line, d.Kind, d.Name, d.Policy != nil, len(d.Errors)})
	}
	want := []summary{
		{1, 3, "Pod", "bigsecret", false, 0},
		{3, 11, "TracingPolicy", "test", true, 0},
		{4, 18, "TracingPolicyNamespaced", "ns", false, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("documents:\n%+v\nwant:\n%+v", got, want)
	}
	if docs[0].IsPolicy() || !docs[1].IsPolicy() || !docs[2].IsPolicy() {
		t.Errorf("IsPolicy = %v %v %v", docs[0].IsPolicy(), docs[1].IsPolicy(), docs[2].IsPolicy())
	}

	// Parse returns what parsed along with the error.
	ps, err := policy.Parse([]byte(src), "f.yaml")
	if len(ps) != 1 || ps[0].Metadata.Name != "test" {
		t.Errorf("Parse returned %d policies", len(ps))
	}
	if want := "f.yaml: document 4, line 22: spec.kprobes[0].bogus: unknown field"; err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %s", err, want)
	}
}

func TestParseEmptyInput(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n---\n", "~\n"} {
		ps, err := policy.Parse([]byte(src), "e.yaml")
		if err != nil || len(ps) != 0 {
			t.Errorf("Parse(%q) = %d policies, %v; want none, nil", src, len(ps), err)
		}
	}
}

func TestParseMisspelledKindIsParsedForValidate(t *testing.T) {
	ps, err := policy.Parse([]byte(strings.Replace(header, "TracingPolicy", "tracingpolicy", 1)+"spec: {kprobes: [{call: fd_install}]}\n"), "k.yaml")
	if err != nil || len(ps) != 1 {
		t.Fatalf("Parse = %d, %v", len(ps), err)
	}
	want := `kind: "tracingpolicy", want TracingPolicy or TracingPolicyNamespaced`
	if err := policy.Validate(ps[0]); err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %s", err, want)
	}
}

func TestPolicyFilesAndParseDir(t *testing.T) {
	dir := filepath.Join("testdata", "dir")
	files, err := policy.PolicyFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml")}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("PolicyFiles = %q, want %q (no hidden files, no subdirectories, no other extensions)", files, want)
	}
	ps, err := policy.ParseDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Metadata.Name)
	}
	if want := []string{"open-shadow", "setuid", "exec-tracepoint"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ParseDir names = %q, want %q", names, want)
	}

	ps, err = policy.ParseFile(filepath.Join(dir, "b.yml"))
	if err != nil || len(ps) != 2 {
		t.Errorf("ParseFile = %d, %v", len(ps), err)
	}
	if _, err := policy.ParseFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("ParseFile of a missing file succeeded")
	}
	if _, err := policy.ParseDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("ParseDir of a missing directory succeeded")
	}
}

func TestParseHostileInputIsBounded(t *testing.T) {
	// A billion-laughs document: aliases of aliases. The YAML library or
	// the decoder must stop it, quickly and without a panic.
	var b strings.Builder
	b.WriteString(header + "spec:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("  a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("  usdts: [{x: *a8}]\n  kprobes: *a8\n")
	start := time.Now()
	if _, err := policy.Parse([]byte(b.String()), "bomb.yaml"); err == nil {
		t.Error("Parse accepted an alias bomb")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse took %v on an alias bomb", d)
	}

	// The same through typed fields: 100 kprobes of 100 selectors of 100
	// filters of 100 values, all aliases, would be 10^8 nodes.
	hundred := func(alias string) string {
		return "[" + strings.TrimSuffix(strings.Repeat("*"+alias+", ", 100), ", ") + "]"
	}
	typed := header + "x: &v \"1\"\n" +
		"y: &m {index: 0, operator: Equal, values: " + hundred("v") + "}\n" +
		"z: &s {matchArgs: " + hundred("m") + "}\n" +
		"w: &k {call: fd_install, selectors: " + hundred("s") + "}\n" +
		"spec: {kprobes: " + hundred("k") + "}\n"
	start = time.Now()
	_, err := policy.Parse([]byte(typed), "bomb2.yaml")
	if err == nil || !strings.Contains(err.Error(), "document too large or too deeply nested") {
		t.Errorf("Parse of a typed alias bomb: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse took %v on a typed alias bomb", d)
	}
}
