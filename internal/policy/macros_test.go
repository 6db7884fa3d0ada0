package policy_test

import (
	"slices"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

const macrosHeader = header + `spec:
  selectorsMacros:
    etc:
      matchArgs: [{index: 1, operator: Prefix, values: [/etc/]}]
    cat:
      matchBinaries: [{operator: In, values: [/bin/cat]}]
    post:
      matchActions: [{action: Post}]
`

// A selector's macros join their matchers to its own, in the order named.
func TestSelectorMacrosExpand(t *testing.T) {
	p := mustParse(t, macrosHeader+"  kprobes:\n"+openat+`    selectors:
    - macros: [etc, cat]
      matchActions: [{action: Sigkill}]
    - macros: [post]
`)
	prog, err := policy.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	sel := p.Spec.KProbes[0].Selectors
	if len(sel[0].MatchArgs) != 1 || sel[0].MatchArgs[0].Values[0] != "/etc/" ||
		len(sel[0].MatchBinaries) != 1 || sel[0].MatchActions[0].Action != "Sigkill" || sel[0].Macros != nil {
		t.Errorf("first selector after expansion: %+v", sel[0])
	}
	if len(sel[1].MatchActions) != 1 || sel[1].MatchActions[0].Action != "Post" {
		t.Errorf("second selector after expansion: %+v", sel[1])
	}
	h := prog.Hooks[0]
	if len(h.Selectors) != 2 || h.Selectors[0].Signal != 9 || h.Selectors[0].Binaries == nil {
		t.Errorf("compiled selectors %+v", h.Selectors)
	}
	// A second pass (Validate again, or Compile) changes nothing.
	if err := policy.Validate(p); err != nil || len(p.Spec.KProbes[0].Selectors[0].MatchArgs) != 1 {
		t.Errorf("second expansion: %v, %+v", err, p.Spec.KProbes[0].Selectors[0])
	}
}

// Each mistake with macros is named by the field of the reference, and a
// policy with one keeps its selectors as written.
func TestSelectorMacroMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"undefined", macrosHeader + "  kprobes:\n" + openat + "    selectors:\n    - macros: [etc, nope]\n",
			[]string{`spec.kprobes[0].selectors[0].macros[1]: undefined macro "nope"; spec.selectorsMacros defines cat, etc, post`}},
		{"none defined", kprobe(openat + "    selectors:\n    - macros: [etc]\n"),
			[]string{`spec.kprobes[0].selectors[0].macros[0]: macro "etc" is used, but spec.selectorsMacros defines none`}},
		{"field twice", macrosHeader + "  kprobes:\n" + openat + `    selectors:
    - macros: [etc]
      matchArgs: [{index: 1, operator: Postfix, values: [.conf]}]
`, []string{`spec.kprobes[0].selectors[0].macros[0]: macro "etc" sets matchArgs, which the selector sets too: a matcher field comes from one place`}},
		{"nested", header + `spec:
  selectorsMacros:
    a: {macros: [b]}
    b: {matchActions: [{action: Post}]}
  kprobes:
` + openat, []string{`spec.selectorsMacros.a.macros: a macro cannot use other macros`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.src)
			got := problems(t, policy.Validate(p))
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("problems %q\nwant among them %q", got, w)
				}
			}
			if _, err := policy.Compile(p); err == nil {
				t.Errorf("Compile accepted it")
			}
		})
	}
}
