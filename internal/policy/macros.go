package policy

import (
	"fmt"
	"reflect"
	"strings"
)

// expandMacros adds to each selector the matchers of the macros it names
// (spec.selectorsMacros), as Tetragon does: a macro's matchers join the
// selector's, a matcher field may come from one place only (the selector
// or one of its macros), and a macro cannot name macros. Nothing changes
// unless every reference is sound; the expanded selectors then name no
// macros, so a second expansion is a no-op.
func (v *validator) expandMacros() {
	s := &v.p.Spec
	for _, name := range sortedKeys(s.SelectorsMacros) {
		if m := s.SelectorsMacros[name]; len(m.Macros) > 0 {
			v.addf(joinKey("spec.selectorsMacros", name)+".macros", "a macro cannot use other macros")
		}
	}
	type target struct {
		path string
		sel  *SelectorSpec
	}
	var targets []target
	hooks := func(kind string, n int, selectors func(int) []SelectorSpec) {
		for i := range n {
			sels := selectors(i)
			for j := range sels {
				if len(sels[j].Macros) > 0 {
					targets = append(targets, target{fmt.Sprintf("spec.%s[%d].selectors[%d]", kind, i, j), &sels[j]})
				}
			}
		}
	}
	hooks("kprobes", len(s.KProbes), func(i int) []SelectorSpec { return s.KProbes[i].Selectors })
	hooks("fentries", len(s.Fentries), func(i int) []SelectorSpec { return s.Fentries[i].Selectors })
	hooks("tracepoints", len(s.Tracepoints), func(i int) []SelectorSpec { return s.Tracepoints[i].Selectors })
	hooks("uprobes", len(s.UProbes), func(i int) []SelectorSpec { return s.UProbes[i].Selectors })
	hooks("lsmhooks", len(s.LsmHooks), func(i int) []SelectorSpec { return s.LsmHooks[i].Selectors })
	hooks("usdts", len(s.Usdts), func(i int) []SelectorSpec { return s.Usdts[i].Selectors })

	before := len(v.errs)
	expanded := make([]SelectorSpec, len(targets))
	for t, tg := range targets {
		sel := *tg.sel
		// from names where each matcher field came from.
		from := map[string]string{}
		for _, f := range matcherFields(&sel) {
			from[f] = "the selector"
		}
		for k, name := range tg.sel.Macros {
			mp := fmt.Sprintf("%s.macros[%d]", tg.path, k)
			m, ok := s.SelectorsMacros[name]
			switch {
			case !ok && len(s.SelectorsMacros) == 0:
				v.addf(mp, "macro %q is used, but spec.selectorsMacros defines none", name)
				continue
			case !ok:
				v.addf(mp, "undefined macro %q; spec.selectorsMacros defines %s", name, strings.Join(sortedKeys(s.SelectorsMacros), ", "))
				continue
			}
			for _, f := range matcherFields(&m) {
				if prev, dup := from[f]; dup {
					v.addf(mp, "macro %q sets %s, which %s sets too: a matcher field comes from one place", name, f, prev)
					continue
				}
				from[f] = fmt.Sprintf("macro %q", name)
			}
			sel = mergeMatchers(sel, m)
		}
		sel.Macros = nil
		expanded[t] = sel
	}
	if len(v.errs) > before {
		return
	}
	for t, tg := range targets {
		*tg.sel = expanded[t]
	}
}

// matcherFields returns the JSON names of sel's non-empty matcher fields.
func matcherFields(sel *SelectorSpec) []string {
	var names []string
	rv := reflect.ValueOf(sel).Elem()
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if f.Name == "Macros" || rv.Field(i).Len() == 0 {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// mergeMatchers returns sel with m's matchers appended, field by field:
// every slice field of SelectorSpec, so that a matcher added to the type
// joins macros without a change here.
func mergeMatchers(sel, m SelectorSpec) SelectorSpec {
	out := reflect.ValueOf(&sel).Elem()
	in := reflect.ValueOf(m)
	for i := range out.NumField() {
		if out.Type().Field(i).Name == "Macros" || in.Field(i).Len() == 0 {
			continue
		}
		merged := reflect.AppendSlice(reflect.MakeSlice(out.Field(i).Type(), 0, out.Field(i).Len()+in.Field(i).Len()), out.Field(i))
		out.Field(i).Set(reflect.AppendSlice(merged, in.Field(i)))
	}
	return sel
}
