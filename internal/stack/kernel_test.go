package stack

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

const kallsyms = `ffffffff81000000 T _text
ffffffff81000000 T _stext
ffffffff81000100 d some_data
ffffffff81001000 t do_one
ffffffff81002000 T do_syscall_64
ffffffff81003000 T entry_SYSCALL_64
ffffffff81100000 T bpf_trace_run2
ffffffffc0001000 t nft_do_chain	[nf_tables]
ffffffffc0058000 t bpf_prog_44c7c37891ffbad9_vigil_sys_enter_btf	[bpf]
ffffffffc0060000 t ftrace_trampoline	[__builtin__ftrace]
`

func writeKallsyms(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKernelNamesFramesAndDropsBPFsOwn(t *testing.T) {
	k := NewKernel(writeKallsyms(t, kallsyms))
	if err := k.Err(); err != nil {
		t.Fatal(err)
	}
	got := k.Frames([]uint64{0xffffffffc00580a0, 0xffffffff81100010, 0xffffffffc00600a0, 0xffffffffc0001044, 0xffffffff81001fff, 0xffffffff81003000, 0x10})
	want := []Frame{
		{Address: 0xffffffffc0001044, Symbol: "nft_do_chain", Offset: 0x44, Module: "nf_tables"},
		// A return address at the end of do_one, named by the byte before.
		{Address: 0xffffffff81001fff, Symbol: "do_one", Offset: 0xfff},
		// A call that ends do_syscall_64 returns to the next symbol's
		// first byte: the frame is do_syscall_64's.
		{Address: 0xffffffff81003000, Symbol: "do_syscall_64", Offset: 0x1000},
		{Address: 0x10},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("frames\n%+v\nwant\n%+v", got, want)
	}
}

func TestKernelWithoutAddressesKeepsThem(t *testing.T) {
	k := NewKernel(writeKallsyms(t, "0000000000000000 T _text\n0000000000000000 T do_syscall_64\n"))
	if k.Err() == nil {
		t.Error("no error for a kallsyms with hidden addresses")
	}
	if got := k.Frames([]uint64{0xffffffff81002010}); !reflect.DeepEqual(got, []Frame{{Address: 0xffffffff81002010}}) {
		t.Errorf("frames %+v: want the address alone", got)
	}
	if NewKernel(filepath.Join(t.TempDir(), "missing")).Err() == nil {
		t.Error("no error for a missing kallsyms")
	}
}

func TestKernelRereadsItsTableWhenOld(t *testing.T) {
	path := writeKallsyms(t, kallsyms)
	k := NewKernel(path)
	late := uint64(0xffffffffc0100010)
	if f := k.Frames([]uint64{late}); f[0].Symbol == "late_module_fn" {
		t.Fatalf("named %+v before the module was loaded", f[0])
	}
	os.WriteFile(path, []byte(kallsyms+"ffffffffc0100000 t late_module_fn\t[late]\n"), 0o644)
	k.mu.Lock()
	k.read = k.read.Add(-2 * kernelRefresh)
	k.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f := k.Frames([]uint64{late}); f[0].Symbol == "late_module_fn" && f[0].Module == "late" {
			return
		}
	}
	t.Error("a module loaded after the first read is never named")
}
