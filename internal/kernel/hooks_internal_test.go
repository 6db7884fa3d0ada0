package kernel

import (
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

func TestPrefilter(t *testing.T) {
	eq := func(arg uint8, values ...string) policy.Filter {
		return policy.Filter{Arg: arg, Op: policy.OpEqual, String: true, Strings: values}
	}
	bloomOf := func(values ...string) (b [8]int64) {
		addBloom(b[:], values)
		return b
	}
	args := make([]policy.Arg, 3)
	for _, tc := range []struct {
		name  string
		sels  []policy.Selector
		arg   uint8
		bloom [8]int64
		ok    bool
	}{
		{name: "no selector: every hit posts"},
		{name: "one selector", sels: []policy.Selector{{Filters: []policy.Filter{eq(1, "/a", "/b")}}},
			arg: 1, bloom: bloomOf("/a", "/b"), ok: true},
		{name: "the union of the selectors' sets", sels: []policy.Selector{
			{Filters: []policy.Filter{eq(1, "/a")}},
			{Filters: []policy.Filter{eq(2, "x"), eq(1, "/b")}},
		}, arg: 1, bloom: bloomOf("/a", "/b"), ok: true},
		{name: "a selector without a set", sels: []policy.Selector{
			{Filters: []policy.Filter{eq(1, "/a")}},
			{Filters: []policy.Filter{{Arg: 1, Op: policy.OpPrefix, String: true, Strings: []string{"/b"}}}},
		}},
		{name: "NotEqual", sels: []policy.Selector{
			{Filters: []policy.Filter{{Arg: 1, Op: policy.OpNotEqual, String: true, Strings: []string{"/a"}}}},
		}},
		{name: "the argument whose union rules out more", sels: []policy.Selector{
			{Filters: []policy.Filter{eq(1, "/a", "/b", "/c"), eq(2, "x")}},
		}, arg: 2, bloom: bloomOf("x"), ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arg, bloom, ok := prefilter(&policy.Hook{Args: args, Selectors: tc.sels})
			if arg != tc.arg || bloom != tc.bloom || ok != tc.ok {
				t.Errorf("prefilter: arg %d, bloom %x, ok %v; want %d, %x, %v", arg, bloom, ok, tc.arg, tc.bloom, tc.ok)
			}
		})
	}
}
