package kernel_test

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// selectorSensor loads a sensor for tests that install one policy after
// another with replace.
func selectorSensor(t *testing.T) *kernel.Sensor {
	t.Helper()
	testenv.RequireBPF(t)
	s, err := kernel.LoadSensor(kernel.SensorOptions{RingBufferSize: 1 << 21})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// replace installs p in place of old (nil: beside nothing).
func replace(t *testing.T, s *kernel.Sensor, old *kernel.PolicyHooks, p *policy.TracingPolicy) *kernel.PolicyHooks {
	t.Helper()
	prog, err := policy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := s.InstallPolicy(prog, old)
	if err != nil {
		t.Fatal(err)
	}
	return ph
}

// catAs runs /bin/cat on file with attr and returns its pid. The file may be
// out of the process's reach: the hook sees the openat all the same.
func catAs(t *testing.T, attr *syscall.SysProcAttr, file string) int {
	t.Helper()
	cmd := exec.Command("/bin/cat", file)
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("cat with %+v: %v: %s", attr, err, out)
		}
	}
	return cmd.ProcessState.Pid()
}

// posted counts the records of the process that run starts.
func posted(t *testing.T, s *kernel.Sensor, run func() int) int {
	t.Helper()
	return len(hookRecords(t, s, func() []int { return []int{run()} }))
}

// nobody is a process with no capabilities: root's capabilities go when it
// becomes another user, and an exec as that user grants none.
var nobody = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "needs root to run processes with and without capabilities")
	}
}

func capsPolicy(file string, caps ...policy.CapabilitySelector) *policy.TracingPolicy {
	return openatPolicy(false, policy.SelectorSpec{
		MatchArgs:         []policy.ArgSelector{pathIs("Equal", file)},
		MatchCapabilities: caps,
	})
}

// TestMatchCapabilitiesEffective: In matches a process that has one of the
// capabilities (root), NotIn one that has none of them.
func TestMatchCapabilitiesEffective(t *testing.T) {
	requireRoot(t)
	_, f := files(t, "file")
	s := selectorSensor(t)
	ph := replace(t, s, nil, capsPolicy(f[0], policy.CapabilitySelector{
		Type: "Effective", Operator: "In", Values: []string{"CAP_SYS_ADMIN", "CAP_BPF"}}))
	if n := posted(t, s, func() int { return catAs(t, nil, f[0]) }); n != 1 {
		t.Errorf("In [CAP_SYS_ADMIN CAP_BPF], root: %d records, want 1", n)
	}
	if n := posted(t, s, func() int { return catAs(t, nobody, f[0]) }); n != 0 {
		t.Errorf("In [CAP_SYS_ADMIN CAP_BPF], no capabilities: %d records, want 0", n)
	}

	replace(t, s, ph, capsPolicy(f[0], policy.CapabilitySelector{
		Operator: "NotIn", Values: []string{"CAP_SYS_ADMIN"}}))
	if n := posted(t, s, func() int { return catAs(t, nil, f[0]) }); n != 0 {
		t.Errorf("NotIn [CAP_SYS_ADMIN], root: %d records, want 0", n)
	}
	if n := posted(t, s, func() int { return catAs(t, nobody, f[0]) }); n != 1 {
		t.Errorf("NotIn [CAP_SYS_ADMIN], no capabilities: %d records, want 1", n)
	}
}

// TestMatchCapabilitiesPermittedAndInheritable reads the other two sets:
// an ambient capability is in the inheritable set across exec, which root
// processes otherwise leave empty.
func TestMatchCapabilitiesPermittedAndInheritable(t *testing.T) {
	requireRoot(t)
	_, f := files(t, "file")
	s := selectorSensor(t)
	ph := replace(t, s, nil, capsPolicy(f[0], policy.CapabilitySelector{
		Type: "Permitted", Operator: "In", Values: []string{"CAP_SYS_ADMIN"}}))
	if n := posted(t, s, func() int { return catAs(t, nil, f[0]) }); n != 1 {
		t.Errorf("Permitted In [CAP_SYS_ADMIN], root: %d records, want 1", n)
	}
	if n := posted(t, s, func() int { return catAs(t, nobody, f[0]) }); n != 0 {
		t.Errorf("Permitted In [CAP_SYS_ADMIN], no capabilities: %d records, want 0", n)
	}

	replace(t, s, ph, capsPolicy(f[0], policy.CapabilitySelector{
		Type: "Inheritable", Operator: "In", Values: []string{"CAP_NET_RAW"}}))
	ambient := &syscall.SysProcAttr{AmbientCaps: []uintptr{unix.CAP_NET_RAW}}
	if n := posted(t, s, func() int { return catAs(t, ambient, f[0]) }); n != 1 {
		t.Errorf("Inheritable In [CAP_NET_RAW], with it ambient: %d records, want 1", n)
	}
	if n := posted(t, s, func() int { return catAs(t, nil, f[0]) }); n != 0 {
		t.Errorf("Inheritable In [CAP_NET_RAW], root without it: %d records, want 0", n)
	}
}

// TestMatchCapabilitiesNamespaceCapability: with isNamespaceCapability,
// only processes outside the host's user namespace match; root of a new
// user namespace has CAP_SYS_ADMIN there.
func TestMatchCapabilitiesNamespaceCapability(t *testing.T) {
	requireRoot(t)
	requireHostNamespace(t, "user")
	_, f := files(t, "file")
	s := selectorSensor(t)
	replace(t, s, nil, capsPolicy(f[0], policy.CapabilitySelector{
		Operator: "In", IsNamespaceCapability: true, Values: []string{"CAP_SYS_ADMIN"}}))
	if n := posted(t, s, func() int { return catAs(t, nil, f[0]) }); n != 0 {
		t.Errorf("host root: %d records, want 0", n)
	}
	userns := &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	if n := posted(t, s, func() int { return catAs(t, userns, f[0]) }); n != 1 {
		t.Errorf("root of a new user namespace: %d records, want 1", n)
	}
}

// nsInode is the inode number of a namespace file, /proc/PID/ns/NAME.
func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		testenv.Unavailable(t, "reading %s: %v", path, err)
	}
	return st.Ino
}

// requireHostNamespace skips where the tests do not run in the host's
// namespace of that name (in a container). Where pid 1 is out of reach
// (a sandbox protects it), standInProcFS stands in for the host.
func requireHostNamespace(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Stat("/proc/1/ns/" + name); errors.Is(err, os.ErrPermission) {
		return
	}
	if nsInode(t, "/proc/self/ns/"+name) != nsInode(t, "/proc/1/ns/"+name) {
		testenv.Unavailable(t, "the tests do not run in the host's %s namespace", name)
	}
}

// standInProcFS points the sensor, where the real pid 1's namespaces
// cannot be read even by root (a sandbox's protected init), at a proc
// directory whose pid 1 has the test's own namespaces, through SetProcFS.
func standInProcFS(t *testing.T, s *kernel.Sensor) {
	t.Helper()
	if _, err := os.Stat("/proc/1/ns/user"); !errors.Is(err, os.ErrPermission) {
		return
	}
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/1/ns", 0o755); err != nil {
		t.Fatal(err)
	}
	self := "/proc/" + strconv.Itoa(os.Getpid()) + "/ns/"
	for _, n := range []string{"uts", "ipc", "mnt", "pid", "pid_for_children", "net", "time", "time_for_children", "cgroup", "user"} {
		if err := os.Symlink(self+n, dir+"/1/ns/"+n); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("/proc/1/ns is out of reach: the test's namespaces stand in for the host's")
	s.SetProcFS(dir)
}

func nsPolicy(file string, ns ...policy.NamespaceSelector) *policy.TracingPolicy {
	return openatPolicy(false, policy.SelectorSpec{
		MatchArgs:       []policy.ArgSelector{pathIs("Equal", file)},
		MatchNamespaces: ns,
	})
}

// TestMatchNamespacesHostNS: for every namespace type, NotIn [host_ns]
// matches a process in a namespace of its own and not one in the host's.
func TestMatchNamespacesHostNS(t *testing.T) {
	requireRoot(t)
	_, f := files(t, "file")
	s := selectorSensor(t)
	standInProcFS(t, s)
	var ph *kernel.PolicyHooks
	for _, tt := range []struct {
		ns    string
		proc  string
		clone uintptr
	}{
		{"Uts", "uts", syscall.CLONE_NEWUTS},
		{"Ipc", "ipc", syscall.CLONE_NEWIPC},
		{"Mnt", "mnt", syscall.CLONE_NEWNS},
		{"Pid", "pid", syscall.CLONE_NEWPID},
		{"PidForChildren", "pid_for_children", syscall.CLONE_NEWPID},
		{"Net", "net", syscall.CLONE_NEWNET},
		{"Time", "time", unix.CLONE_NEWTIME},
		{"TimeForChildren", "time_for_children", unix.CLONE_NEWTIME},
		{"Cgroup", "cgroup", syscall.CLONE_NEWCGROUP},
		{"User", "user", syscall.CLONE_NEWUSER},
	} {
		t.Run(tt.ns, func(t *testing.T) {
			requireHostNamespace(t, tt.proc)
			ph = replace(t, s, ph, nsPolicy(f[0], policy.NamespaceSelector{Namespace: tt.ns, Operator: "NotIn", Values: []string{"host_ns"}}))
			if n := posted(t, s, func() int { return catAs(t, nil, f[0]) }); n != 0 {
				t.Errorf("in the host's namespace: %d records, want 0", n)
			}
			if n := posted(t, s, func() int { return catAs(t, &syscall.SysProcAttr{Cloneflags: tt.clone}, f[0]) }); n != 1 {
				t.Errorf("in a namespace of its own: %d records, want 1", n)
			}
		})
	}
}

// TestMatchNamespacesInodes: In takes the inode numbers /proc shows, and
// the entries of a selector must all hold.
func TestMatchNamespacesInodes(t *testing.T) {
	requireRoot(t)
	_, f := files(t, "file")
	net := strconv.FormatUint(nsInode(t, "/proc/self/ns/net"), 10)
	s := selectorSensor(t)
	standInProcFS(t, s)
	ph := replace(t, s, nil, nsPolicy(f[0], policy.NamespaceSelector{Namespace: "Net", Operator: "In", Values: []string{"1", net}}))
	if n := posted(t, s, func() int { return catAs(t, nil, f[0]) }); n != 1 {
		t.Errorf("Net In [%s], in it: %d records, want 1", net, n)
	}
	if n := posted(t, s, func() int { return catAs(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}, f[0]) }); n != 0 {
		t.Errorf("Net In [%s], in a new network namespace: %d records, want 0", net, n)
	}

	requireHostNamespace(t, "uts")
	replace(t, s, ph, nsPolicy(f[0],
		policy.NamespaceSelector{Namespace: "Uts", Operator: "NotIn", Values: []string{"host_ns"}},
		policy.NamespaceSelector{Namespace: "Net", Operator: "In", Values: []string{net}}))
	for _, tt := range []struct {
		what  string
		clone uintptr
		want  int
	}{
		{"host namespaces", 0, 0},
		{"new uts namespace", syscall.CLONE_NEWUTS, 1},
		{"new uts and network namespaces", syscall.CLONE_NEWUTS | syscall.CLONE_NEWNET, 0},
	} {
		if n := posted(t, s, func() int { return catAs(t, &syscall.SysProcAttr{Cloneflags: tt.clone}, f[0]) }); n != tt.want {
			t.Errorf("Uts NotIn [host_ns] and Net In [%s], %s: %d records, want %d", net, tt.what, n, tt.want)
		}
	}
}

// TestMatchNamespacesHostNSUnreadable: a host_ns that cannot be resolved
// refuses the policy, naming the field, before anything reaches the kernel.
func TestMatchNamespacesHostNSUnreadable(t *testing.T) {
	_, f := files(t, "file")
	s := selectorSensor(t)
	s.SetProcFS(t.TempDir()) // no pid 1 in there
	prog, err := policy.Compile(nsPolicy(f[0], policy.NamespaceSelector{Namespace: "Uts", Operator: "In", Values: []string{"host_ns"}}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.InstallPolicy(prog, nil)
	const want = "spec.kprobes[0].selectors[0].matchNamespaces[0].values: host_ns: reading the host's Uts namespace: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want one starting %q", err, want)
	}
}

// TestMatchCapabilityChanges: a process that dropped CAP_SYS_ADMIN from
// its effective set since its exec matches matchCapabilityChanges In
// [CAP_SYS_ADMIN], once: the change is then taken as seen. A process that
// changed nothing does not match. Both are this test binary, run again.
func TestMatchCapabilityChanges(t *testing.T) {
	if os.Getenv("VIGIL_CAPCH_HELPER") != "" {
		if os.Getenv("VIGIL_CAPCH_HELPER") == "drop" {
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				os.Exit(3)
			}
			data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				os.Exit(4)
			}
		}
		for range 2 {
			f, err := os.Open(os.Getenv("VIGIL_CAPCH_FILE"))
			if err != nil {
				os.Exit(5)
			}
			f.Close()
		}
		os.Exit(0)
	}
	testenv.RequireBPF(t)
	_, f := files(t, "marker")
	s, _ := install(t, openatPolicy(false, policy.SelectorSpec{
		MatchArgs: []policy.ArgSelector{pathIs("Equal", f[0])},
		MatchCapabilityChanges: []map[string]any{
			{"type": "Effective", "operator": "In", "values": []any{"CAP_SYS_ADMIN"}},
		},
	}))
	helper := func(mode string) int {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMatchCapabilityChanges$")
		cmd.Env = append(os.Environ(), "VIGIL_CAPCH_HELPER="+mode, "VIGIL_CAPCH_FILE="+f[0])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helper %s: %v %s", mode, err, out)
		}
		return cmd.ProcessState.Pid()
	}
	var dropped, kept int
	recs := hookRecords(t, s, func() []int {
		dropped, kept = helper("drop"), helper("keep")
		return []int{dropped, kept}
	})
	if len(recs) != 1 || recs[0].PID != uint32(dropped) {
		t.Fatalf("records %+v: want one, of the process that dropped CAP_SYS_ADMIN (%d), not of the one that kept it (%d)", recs, dropped, kept)
	}
}
