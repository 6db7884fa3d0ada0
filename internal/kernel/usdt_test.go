package kernel_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// usdtTarget has one USDT probe, vigil_test:tick, written out as
// <sys/sdt.h> would write it (a .note.stapsdt entry, so that the test needs
// no systemtap header): four arguments, in a register (32 and 64 bits), in
// memory on the stack and a constant. The probe has a semaphore and is
// only reached while a tracer has raised it, which proves that attaching
// does: the target prints the semaphore when it ends.
const usdtTarget = `#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((section(".probes"))) volatile unsigned short vigil_test_tick_semaphore;

__attribute__((noinline)) static void tick(int32_t a, int64_t b)
{
	int64_t m = b + 1;
	if (vigil_test_tick_semaphore)
		__asm__ __volatile__(
			"990: nop\n"
			".pushsection .note.stapsdt,\"\",\"note\"\n"
			".balign 4\n"
			".4byte 992f-991f, 994f-993f, 3\n"
			"991: .asciz \"stapsdt\"\n"
			"992: .balign 4\n"
			"993: .8byte 990b\n"
			".8byte _.stapsdt.base\n"
			".8byte vigil_test_tick_semaphore\n"
			".asciz \"vigil_test\"\n"
			".asciz \"tick\"\n"
			".asciz \"-4@%[a] 8@%[b] -8@%[m] 4@%[c]\"\n"
			"994: .balign 4\n"
			".popsection\n"
			".ifndef _.stapsdt.base\n"
			".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"
			".weak _.stapsdt.base\n"
			".hidden _.stapsdt.base\n"
			"_.stapsdt.base: .space 1\n"
			".size _.stapsdt.base, 1\n"
			".popsection\n"
			".endif\n"
			:: [a] "r"(a), [b] "r"(b), [m] "m"(m), [c] "i"(7));
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	for (int i = 0; i < n; i++)
		tick(-5 - i, ((int64_t)1 << 40) + i);
	printf("%d\n", vigil_test_tick_semaphore);
	return 0;
}
`

// buildC compiles src with gcc -O1 and flags into a binary in a temporary
// directory.
func buildC(t *testing.T, src string, flags ...string) string {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		testenv.Unavailable(t, "no gcc to build the target: %v", err)
	}
	dir := t.TempDir()
	file, bin := filepath.Join(dir, "target.c"), filepath.Join(dir, "target")
	os.WriteFile(file, []byte(src), 0o644)
	args := append(append([]string{"-O1"}, flags...), "-o", bin, file)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, out)
	}
	return bin
}

func usdtPolicy(spec policy.UsdtSpec) *policy.TracingPolicy {
	return &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "usdt-test"},
		Spec:     policy.Spec{Usdts: []policy.UsdtSpec{spec}},
	}
}

func TestUsdtHookReadsProbeArguments(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, usdtTarget)
	s, ph := install(t, usdtPolicy(policy.UsdtSpec{
		Path: bin, Provider: "vigil_test", Name: "tick",
		Args: []policy.ArgSpec{{Index: 0, Type: "int32"}, {Index: 1, Type: "int64"}, {Index: 2, Type: "int64"}, {Index: 3, Type: "int32"}},
		Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{
			{Index: 0, Operator: "Equal", Values: []string{"-6"}},
		}}},
	}))
	if m := ph.Hooks[0].Mechanism; m != "uprobe (usdt)" {
		t.Errorf("mechanism %q", m)
	}
	var out []byte
	recs := hookRecords(t, s, func() []int {
		cmd := exec.Command(bin, "3")
		var err error
		if out, err = cmd.Output(); err != nil {
			t.Fatal(err)
		}
		return []int{cmd.ProcessState.Pid()}
	})
	if got := strings.TrimSpace(string(out)); got != "1" {
		t.Errorf("the target saw its semaphore at %s, want 1 (raised by the attached probe)", got)
	}
	// Calls a = -5, -6, -7: the selector wants the second.
	want := []int64{-6, 1<<40 + 1, 1<<40 + 2, 7}
	if len(recs) != 1 {
		t.Fatalf("records %+v: want one, the tick with a = -6", recs)
	}
	for i, w := range want {
		if got := recs[0].Args[i].Int; got != w {
			t.Errorf("argument %d = %d, want %d", i, got, w)
		}
	}
}

func TestUsdtHookOnAMissingProbeIsRefused(t *testing.T) {
	testenv.RequireBPF(t)
	bin := buildC(t, usdtTarget)
	_, _, err := tryInstall(t, usdtPolicy(policy.UsdtSpec{Path: bin, Provider: "vigil_test", Name: "tock"}), kernel.SensorOptions{RingBufferSize: 1 << 21})
	if err == nil || !strings.Contains(err.Error(), "spec.usdts[0].path") || !strings.Contains(err.Error(), "no USDT probe vigil_test:tock (it has vigil_test:tick)") {
		t.Fatalf("install: %v; want a refusal naming the probes the binary has", err)
	}
}
