package kernel

import (
	"strings"
	"testing"
)

func TestParseUsdtArgsX86(t *testing.T) {
	got, err := parseUsdtArgsWith("-4@%edi 8@%rsi -8@-8(%rsp) 4@$7 1@(%r12) 2@0x10(%rbp)", parseUsdtLocationX86)
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
	sameUsdtArgs(t, got, want)
	for spec, reason := range map[string]string{
		"8@(%rax,%rdx,8)": "other than OFFSET(%REG)",
		"8@counter(%rip)": "a symbol, %rip-relative",
		"3@%rax":          "size 3",
		"1@%ah":           "register %ah",
		"8@%xmm0":         "register %xmm0",
		"rax":             "no SIZE@",
		"1@%al 1@%al 1@%al 1@%al 1@%al 1@%al 1@%al 1@%al 1@%al": "9 arguments",
	} {
		if _, err := parseUsdtArgsWith(spec, parseUsdtLocationX86); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want an error saying %q", spec, err, reason)
		}
	}
}

func sameUsdtArgs(t *testing.T, got, want []usdtArg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d arguments, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("argument %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// The syntax GCC and Clang emit for arm64 (as in libbpf's usdt.c tests):
// registers x0-x30 and their w halves, sp, [REG] and [REG, OFFSET], bare
// constants. user_pt_regs is regs[31], sp, pc, 8 bytes each.
func TestParseUsdtArgsArm64(t *testing.T) {
	got, err := parseUsdtArgsWith("-4@w0 8@x1 -8@[sp, 16] 4@7 1@[x19] 2@[x29, -0x10] 8@x30 8@[sp]", parseUsdtLocationArm64)
	if err != nil {
		t.Fatal(err)
	}
	want := []usdtArg{
		{Kind: usdtArgReg, Size: 4, Signed: true, RegOff: 0},
		{Kind: usdtArgReg, Size: 8, RegOff: 1 * 8},
		{Kind: usdtArgRegDeref, Size: 8, Signed: true, RegOff: 31 * 8, ValOff: 16},
		{Kind: usdtArgConst, Size: 4, ValOff: 7},
		{Kind: usdtArgRegDeref, Size: 1, RegOff: 19 * 8},
		{Kind: usdtArgRegDeref, Size: 2, RegOff: 29 * 8, ValOff: -16},
		{Kind: usdtArgReg, Size: 8, RegOff: 30 * 8},
		{Kind: usdtArgRegDeref, Size: 8, RegOff: 31 * 8},
	}
	sameUsdtArgs(t, got, want)
	for spec, reason := range map[string]string{
		"8@[x1, x2]": "a register index",
		"8@[x1":      "other than [REG, OFFSET]",
		"8@x31":      "register x31",
		"8@x01":      "register x01",
		"8@v0":       "register v0",
		"8@%rax":     "register %rax",
		"3@x0":       "size 3",
	} {
		if _, err := parseUsdtArgsWith(spec, parseUsdtLocationArm64); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want an error saying %q", spec, err, reason)
		}
	}
}
