package kernel

import (
	"strings"
	"testing"
)

func TestParseUsdtArgs(t *testing.T) {
	got, err := parseUsdtArgs("-4@%edi 8@%rsi -8@-8(%rsp) 4@$7 1@(%r12) 2@0x10(%rbp)")
	if err != nil {
		t.Fatal(err)
	}
	want := []usdtArg{
		{Kind: usdtArgReg, Size: 4, Signed: true, RegOff: 14 * 8},
		{Kind: usdtArgReg, Size: 8, RegOff: 13 * 8},
		{Kind: usdtArgRegDeref, Size: 8, Signed: true, RegOff: 19 * 8, ValOff: -8},
		{Kind: usdtArgConst, Size: 4, ValOff: 7},
		{Kind: usdtArgRegDeref, Size: 1, RegOff: 3 * 8},
		{Kind: usdtArgRegDeref, Size: 2, RegOff: 4 * 8, ValOff: 16},
	}
	if len(got) != len(want) {
		t.Fatalf("%d arguments, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("argument %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for spec, reason := range map[string]string{
		"8@(%rax,%rdx,8)": "other than OFFSET(%REG)",
		"8@counter(%rip)": "a symbol, %rip-relative",
		"3@%rax":          "size 3",
		"1@%ah":           "register %ah",
		"8@%xmm0":         "register %xmm0",
		"rax":             "no SIZE@",
		"1@%al 1@%al 1@%al 1@%al 1@%al 1@%al 1@%al 1@%al 1@%al": "9 arguments",
	} {
		if _, err := parseUsdtArgs(spec); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want an error saying %q", spec, err, reason)
		}
	}
}
