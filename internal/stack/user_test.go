package stack

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

//go:noinline
func namedHere() uintptr {
	pc, _, _, _ := runtime.Caller(0)
	return pc
}

func TestUserNamesAFunctionOfThisProcess(t *testing.T) {
	pc := uint64(namedHere())
	u := NewUser("/proc")
	f := u.Frames(uint32(os.Getpid()), "", []uint64{pc})[0]
	exe, _ := os.Executable()
	if f.Module != exe {
		t.Errorf("module %q, want %q", f.Module, exe)
	}
	fn := runtime.FuncForPC(uintptr(pc))
	if want := fn.Name(); f.Symbol != want || f.Offset != pc-uint64(fn.Entry()) {
		t.Errorf("frame %+v, want %s+%#x", f, want, pc-uint64(fn.Entry()))
	}
}

func TestUserFramesOfAGoneProcess(t *testing.T) {
	proc := t.TempDir()
	pid := filepath.Join(proc, "42")
	if err := os.Mkdir(pid, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	maps := "00400000-00500000 r-xp 00000000 fd:01 1234 " + exe + "\n" +
		"7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n" +
		"7f0000002000-7f0000003000 r-xp 00001000 fd:01 99 /opt/my lib.so (deleted)\n"
	if err := os.WriteFile(filepath.Join(pid, "maps"), []byte(maps), 0o644); err != nil {
		t.Fatal(err)
	}
	u := NewUser(proc)
	addrs := []uint64{0x400010, 0x7f0000000010, 0x7f0000002010}
	first := u.Frames(42, "exec-1", addrs)
	if first[0].Module != exe || first[0].ModuleOffset != 0x10 || first[1].Module != "" ||
		first[2].Module != "/opt/my lib.so (deleted)" || first[2].ModuleOffset != 0x1010 {
		t.Fatalf("frames %+v", first)
	}
	// The process exits: its mappings stay known for the program it ran,
	// not for another one under the same pid.
	os.RemoveAll(pid)
	if again := u.Frames(42, "exec-1", addrs); !reflect.DeepEqual(again, first) {
		t.Errorf("after exit %+v, want %+v", again, first)
	}
	other := u.Frames(42, "exec-2", addrs[:1])
	if !reflect.DeepEqual(other, []Frame{{Address: 0x400010}}) {
		t.Errorf("another program's frame %+v: want its address alone", other)
	}
}

func TestUserRereadsMappingsForANewAddressButNotPerFrame(t *testing.T) {
	proc := t.TempDir()
	os.Mkdir(filepath.Join(proc, "7"), 0o755)
	maps := filepath.Join(proc, "7", "maps")
	os.WriteFile(maps, []byte("00400000-00500000 r-xp 00000000 fd:01 1 /bin/a\n"), 0o644)
	u := NewUser(proc)
	jit := uint64(0x7f0000000010)
	if f := u.Frames(7, "g", []uint64{0x400000, jit}); f[0].Module != "/bin/a" || f[1].Module != "" {
		t.Fatalf("frames %+v", f)
	}
	// A library mapped since: not looked for again within mapsReread...
	os.WriteFile(maps, []byte("00400000-00500000 r-xp 00000000 fd:01 1 /bin/a\n7f0000000000-7f0000001000 r-xp 00000000 fd:01 2 /lib/b.so\n"), 0o644)
	if f := u.Frames(7, "g", []uint64{jit}); f[0].Module != "" {
		t.Errorf("mappings reread at once: %+v", f)
	}
	// ...and found after it.
	u.procs[7].read = u.procs[7].read.Add(-mapsReread)
	if f := u.Frames(7, "g", []uint64{jit}); f[0].Module != "/lib/b.so" || f[0].ModuleOffset != 0x10 {
		t.Errorf("frame %+v: want it in /lib/b.so+0x10", f[0])
	}
}
