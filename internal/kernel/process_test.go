package kernel_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
)

// collect reads records until match returns true for one of them or the
// deadline passes.
func collect(t *testing.T, s *kernel.Sensor, match func(any) bool) any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	s.SetDeadline(deadline)
	for {
		r, err := s.Read()
		if err != nil {
			t.Fatalf("no matching record before the deadline: %v", err)
		}
		if match(r) {
			return r
		}
	}
}

func TestProcessSensorReportsExecForkExit(t *testing.T) {
	testenv.RequireBPF(t)
	for _, m := range []kernel.Mechanism{kernel.MechanismTPBTF, kernel.MechanismRawTP} {
		t.Run(string(m), func(t *testing.T) {
			s, err := kernel.LoadSensor(kernel.SensorOptions{RingBufferSize: 1 << 20, Mechanism: m})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Mechanism() != m {
				t.Fatalf("mechanism %s, want %s", s.Mechanism(), m)
			}

			dir := t.TempDir()
			cmd := exec.Command("/bin/sh", "-c", "exit 7", "vigil-arg-"+string(m))
			cmd.Dir = dir
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 7 {
				t.Fatalf("helper: %v", err)
			}
			pid := uint32(cmd.ProcessState.Pid())

			fork := collect(t, s, func(r any) bool { f, ok := r.(*kernel.ForkRecord); return ok && f.PID == pid }).(*kernel.ForkRecord)
			if fork.PPID != uint32(os.Getpid()) {
				t.Errorf("fork ppid %d, want %d", fork.PPID, os.Getpid())
			}
			ex := collect(t, s, func(r any) bool { e, ok := r.(*kernel.ExecRecord); return ok && e.PID == pid }).(*kernel.ExecRecord)
			if ex.Filename != "/bin/sh" {
				t.Errorf("filename %q", ex.Filename)
			}
			want := []string{"/bin/sh", "-c", "exit 7", "vigil-arg-" + string(m)}
			if !slices.Equal(ex.Args, want) {
				t.Errorf("args %q, want %q", ex.Args, want)
			}
			realDir, _ := filepath.EvalSymlinks(dir)
			if ex.Cwd != realDir {
				t.Errorf("cwd %q, want %q", ex.Cwd, realDir)
			}
			if ex.PPID != uint32(os.Getpid()) || ex.UID != uint32(os.Getuid()) || ex.StartTime != fork.StartTime {
				t.Errorf("exec record %+v does not match the fork %+v", ex, fork)
			}
			if ex.CgroupID == 0 {
				t.Errorf("no cgroup id")
			}
			exit := collect(t, s, func(r any) bool { e, ok := r.(*kernel.ExitRecord); return ok && e.PID == pid }).(*kernel.ExitRecord)
			if exit.ExitCode() != 7 || exit.Signal() != 0 {
				t.Errorf("exit status %#x: code %d signal %d", exit.Status, exit.ExitCode(), exit.Signal())
			}
		})
	}
}

func TestProcessSensorReportsSignal(t *testing.T) {
	testenv.RequireBPF(t)
	s, err := kernel.LoadSensor(kernel.SensorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	collect(t, s, func(r any) bool { e, ok := r.(*kernel.ExecRecord); return ok && e.PID == pid })
	cmd.Process.Kill()
	cmd.Wait()
	exit := collect(t, s, func(r any) bool { e, ok := r.(*kernel.ExitRecord); return ok && e.PID == pid }).(*kernel.ExitRecord)
	if exit.Signal() != 9 {
		t.Errorf("signal %d, want 9 (status %#x)", exit.Signal(), exit.Status)
	}
}

func TestProcessSensorTruncatesLongArguments(t *testing.T) {
	testenv.RequireBPF(t)
	s, err := kernel.LoadSensor(kernel.SensorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	long := make([]byte, 6000)
	for i := range long {
		long[i] = 'a'
	}
	cmd := exec.Command("/bin/true", string(long))
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.ProcessState.Pid())
	ex := collect(t, s, func(r any) bool { e, ok := r.(*kernel.ExecRecord); return ok && e.PID == pid }).(*kernel.ExecRecord)
	if !ex.ArgsTruncated || ex.ArgsSize != uint32(len("/bin/true")+1+len(long)+1) {
		t.Errorf("truncated=%v size=%d", ex.ArgsTruncated, ex.ArgsSize)
	}
	if len(ex.Args) != 2 || ex.Args[0] != "/bin/true" || len(ex.Args[1]) != 4095-len("/bin/true")-1 {
		t.Errorf("args: %d of them, second %d bytes", len(ex.Args), len(ex.Args[1]))
	}
}

func TestProcessSensorCloseReleasesKernelObjects(t *testing.T) {
	testenv.RequireBPF(t)
	s, err := kernel.LoadSensor(kernel.SensorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	progs, links := s.ProgramIDs(), s.LinkIDs()
	if len(progs) != 5 || len(links) != 3 {
		t.Fatalf("%d programs and %d links loaded, want 5 (3 process, 2 syscall hook) and 3", len(progs), len(links))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The kernel frees programs after an RCU grace period.
	deadline := time.Now().Add(5 * time.Second)
	for {
		alive := aliveObjects(progs, links)
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still in the kernel after Close: %v", alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func aliveObjects(progs []ebpf.ProgramID, links []link.ID) []string {
	var alive []string
	for id, err := ebpf.ProgramGetNextID(0); err == nil; id, err = ebpf.ProgramGetNextID(id) {
		if slices.Contains(progs, id) {
			alive = append(alive, "program "+itoa(uint32(id)))
		}
	}
	for _, id := range links {
		if l, err := link.NewFromID(id); err == nil {
			l.Close()
			alive = append(alive, "link "+itoa(uint32(id)))
		}
	}
	return alive
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
