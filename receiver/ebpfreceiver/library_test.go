package ebpfreceiver

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/distribution/policies"
	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/policy"
)

// helperEnv makes the test binary, run again, do one behaviour of
// libraryBehaviours as a process of its own (library_test.go).
const helperEnv = "VIGIL_LIBRARY_HELPER"

// init runs a helper instead of the tests (TestMain is mdatagen's).
func init() {
	if h := os.Getenv(helperEnv); h != "" {
		if err := helper(h); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// helper does a behaviour the library must report, in this process.
// Failing calls are fine: syscall hooks report attempts.
func helper(what string) error {
	switch what {
	case "bind":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		return l.Close()
	}
	return fmt.Errorf("no helper %q", what)
}

// behaviour is something an attacker does that a library policy reports.
type behaviour struct {
	name   string
	policy string
	// hooks are the calls the event may name ("sys_dup2|sys_dup3"): the
	// tools reach one syscall or another.
	hooks string
	// do does it and returns the pid of the process that did.
	do func(t *testing.T) int
}

// nobody runs a command as uid and gid 65534: the library reports
// attempts, and as nobody they fail without touching the machine.
func nobody(t *testing.T, argv ...string) int {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	_ = cmd.Run() // denied, as intended
	if cmd.ProcessState == nil {
		t.Fatalf("%v did not start", argv)
	}
	return cmd.ProcessState.Pid()
}

// run runs a command as root and returns its pid; it may fail.
func run(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	_ = cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("%v did not start", cmd.Args)
	}
	return cmd.ProcessState.Pid()
}

// self does something in the test process itself (a thread of it).
func self(f func()) func(*testing.T) int {
	return func(*testing.T) int {
		f()
		return os.Getpid()
	}
}

// loader is the dynamic loader /bin/sh names.
func loader(t *testing.T) string {
	t.Helper()
	f, err := elf.Open("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			return strings.TrimRight(string(b), "\x00")
		}
	}
	t.Fatal("/bin/sh names no loader")
	return ""
}

// memfdCommand runs a copy of bin from a memfd, as fileless malware does.
func memfdCommand(t *testing.T, bin string) *exec.Cmd {
	t.Helper()
	fd, err := unix.MemfdCreate("vigil-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	mem := os.NewFile(uintptr(fd), "memfd")
	t.Cleanup(func() { mem.Close() })
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	mem.Write(b)
	cmd := exec.Command("/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{mem}
	return cmd
}

// deletedCommand runs a copy of bin, in dir, unlinked once opened.
func deletedCommand(t *testing.T, dir, bin string) *exec.Cmd {
	t.Helper()
	f := filepath.Join(dir, "gone")
	copyFile(t, bin, f, 0o755)
	file, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	os.Remove(f)
	cmd := exec.Command("/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{file}
	return cmd
}

// publicTempDir is a directory below /var/tmp (made where missing, as in
// the VM lane) that every user may enter, removed at the end of the test.
func publicTempDir(t *testing.T) string {
	t.Helper()
	os.MkdirAll("/var/tmp", 0o1777)
	dir, err := os.MkdirTemp("/var/tmp", "vigil-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// libraryBehaviours are the attacks each library policy must report, one
// or more per kind of behaviour it covers. tmp is a directory below /tmp.
func libraryBehaviours(t *testing.T, tmp string) []behaviour {
	trueBin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	return []behaviour{
		{"read /etc/shadow", "credential-access", "sys_openat", func(t *testing.T) int { return nobody(t, "/bin/cat", "/etc/shadow") }},
		{"read an SSH private key", "credential-access", "sys_openat", func(t *testing.T) int { return nobody(t, "/bin/cat", "/home/x/.ssh/id_ed25519") }},
		{"read cloud credentials", "credential-access", "sys_openat", func(t *testing.T) int { return nobody(t, "/bin/cat", "/root/.aws/credentials") }},
		{"read another process's environment", "credential-access", "sys_openat", func(t *testing.T) int { return nobody(t, "/bin/cat", "/proc/1/environ") }},

		{"write a cron job", "persistence", "sys_openat", func(t *testing.T) int {
			return nobody(t, "/bin/sh", "-c", "echo '* * * * * root /tmp/x' >> /etc/cron.d/vigil-test")
		}},
		{"write a shell startup file", "persistence", "sys_openat", func(t *testing.T) int { return nobody(t, "/bin/sh", "-c", "echo /tmp/x >> /home/x/.bashrc") }},
		{"add an authorized key", "persistence", "sys_openat", func(t *testing.T) int {
			return nobody(t, "/bin/sh", "-c", "echo ssh-ed25519 AAAA >> /root/.ssh/authorized_keys")
		}},
		{"rename into /etc", "persistence", "sys_rename|sys_renameat|sys_renameat2", func(t *testing.T) int {
			f := filepath.Join(tmp, "preload")
			copyFile(t, "/dev/null", f, 0o644)
			return nobody(t, "/bin/mv", f, "/etc/ld.so.preload")
		}},
		// A name below /etc/shadow that does not exist: the attempt is the
		// event, and tools (busybox's ln, chmod) give up before the call
		// when the file is missing, as it is in the VM lane.
		{"hard link /etc/shadow", "persistence", "sys_link|sys_linkat", self(func() {
			unix.Link("/etc/shadow.vigil-test-missing", filepath.Join(tmp, "s"))
		})},
		{"symbolic link to /etc/shadow", "persistence", "sys_symlink|sys_symlinkat", func(t *testing.T) int {
			return run(t, exec.Command("/bin/ln", "-s", "/etc/shadow", filepath.Join(tmp, "shadow-link")))
		}},
		{"chmod /etc/shadow", "persistence", "sys_chmod|sys_fchmodat|sys_fchmodat2", self(func() {
			unix.Chmod("/etc/shadow.vigil-test-missing", 0o644)
		})},

		{"run a program from /tmp", "execution", "sched/sched_process_exec", func(t *testing.T) int {
			f := filepath.Join(tmp, "dropped")
			copyFile(t, trueBin, f, 0o755)
			return run(t, exec.Command(f))
		}},
		{"run a program from memory", "execution", "sched/sched_process_exec", func(t *testing.T) int {
			return run(t, memfdCommand(t, trueBin))
		}},
		{"run a deleted program", "execution", "sched/sched_process_exec", func(t *testing.T) int {
			return run(t, deletedCommand(t, publicTempDir(t), trueBin))
		}},
		{"run a program through the loader", "execution", "sched/sched_process_exec", func(t *testing.T) int { return run(t, exec.Command(loader(t), trueBin)) }},
		{"preload a library from /tmp", "execution", "sys_openat", func(t *testing.T) int {
			// /bin/sh is dynamically linked everywhere the tests run
			// (busybox's true may be static).
			cmd := exec.Command("/bin/sh", "-c", "exit 0")
			cmd.Env = []string{"LD_PRELOAD=" + filepath.Join(tmp, "libhook.so")}
			return run(t, cmd)
		}},
		{"make a download executable", "execution", "sys_chmod|sys_fchmodat|sys_fchmodat2", func(t *testing.T) int {
			f := filepath.Join(tmp, "payload")
			copyFile(t, "/dev/null", f, 0o644)
			return run(t, exec.Command("/bin/chmod", "0755", f))
		}},

		{"set the setuid bit", "privilege-escalation", "sys_chmod|sys_fchmodat|sys_fchmodat2", func(t *testing.T) int {
			f := filepath.Join(tmp, "suid")
			copyFile(t, "/dev/null", f, 0o755)
			return run(t, exec.Command("/bin/chmod", "4755", f))
		}},
		{"set file capabilities", "privilege-escalation", "sys_setxattr", self(func() {
			unix.Setxattr(filepath.Join(tmp, "no-such-file"), "security.capability", []byte{1}, 0)
		})},
		{"setuid(0)", "privilege-escalation", "sys_setuid", self(func() { unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0) })},
		{"setresuid(0, -1, -1)", "privilege-escalation", "sys_setresuid", self(func() {
			keep := ^uintptr(0)
			unix.RawSyscall(unix.SYS_SETRESUID, 0, keep, keep)
		})},
		{"create a user namespace", "privilege-escalation", "sys_unshare", self(func() {
			// Refused in a threaded process (EINVAL): the attempt is the event.
			unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
		})},

		{"mount from another mount namespace", "container-escape", "sys_mount", func(t *testing.T) int {
			// The child makes / private in its new namespace (a mount)
			// before it runs true.
			cmd := exec.Command(trueBin)
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
			return run(t, cmd)
		}},

		{"load a kernel module", "kernel-modules", "sys_finit_module", self(func() {
			null, _ := os.Open("/dev/null")
			defer null.Close()
			unix.FinitModule(int(null.Fd()), "", 0) // not a module: refused
		})},
		{"load a BPF program", "kernel-modules", "sys_bpf", self(func() { unix.RawSyscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, 0, 0) })},

		{"attach to a process with ptrace", "defense-evasion", "sys_ptrace", self(func() {
			unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1<<30, 0) // no such pid
		})},
		{"write another process's memory", "defense-evasion", "sys_openat", self(func() {
			unix.Open("/proc/1073741824/mem", unix.O_WRONLY, 0) // no such pid
		})},
		{"truncate a log", "defense-evasion", "sys_openat", self(func() {
			unix.Open("/var/log/vigil-test-no-such-dir/auth.log", unix.O_WRONLY|unix.O_TRUNC, 0)
		})},
		{"clear the shell history", "defense-evasion", "sys_truncate", self(func() { unix.Truncate("/home/x/.bash_history", 0) })},
		{"delete the shell history", "defense-evasion", "sys_unlink|sys_unlinkat", self(func() { unix.Unlink("/home/x/.bash_history") })},
		{"link the shell history to /dev/null", "defense-evasion", "sys_symlink|sys_symlinkat", self(func() { unix.Symlink("/dev/null", "/home/x/.bash_history") })},

		{"socket as a shell's standard input", "reverse-shell", "sys_dup2|sys_dup3", func(t *testing.T) int {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			f, err := c.(*net.TCPConn).File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// The child dup2s the socket onto its stdin before exec.
			cmd := exec.Command("/bin/sh", "-c", "exit 0")
			cmd.Stdin = f
			return run(t, cmd)
		}},

		{"open a packet socket", "network", "sys_socket", self(func() {
			if fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err == nil {
				unix.Close(fd)
			}
		})},
		{"open a raw IP socket", "network", "sys_socket", self(func() {
			if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP); err == nil {
				unix.Close(fd)
			}
		})},
		{"connect to a mining pool port", "network", "sys_connect", self(func() {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:3333", time.Second); err == nil {
				c.Close()
			}
		})},
		{"listen from a shell", "network", "sys_bind", func(t *testing.T) int {
			// The test binary under the name of a shell, in helper mode.
			sh := filepath.Join(tmp, "sh")
			exe, _ := os.Executable()
			copyFile(t, exe, sh, 0o755)
			cmd := exec.Command(sh)
			cmd.Env = append(os.Environ(), helperEnv+"=bind")
			return run(t, cmd)
		}},
	}
}

// TestLibraryReportsEachBehaviour runs the library as the default
// configuration loads it, does each attack the library names, and expects
// the policy's event from the process that did it, with the rule's
// attributes and severity.
func TestLibraryReportsEachBehaviour(t *testing.T) {
	tmp, err := os.MkdirTemp("/tmp", "vigil-library-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	cfg := createDefaultConfig().(*Config)
	cfg.Library.Enabled = true
	r, sink, _ := startReceiver(t, cfg)
	for _, name := range policies.Names() {
		st := waitForStatus(t, r, name, func(s policy.Status) bool { return s.Running || s.Error != "" }, 10*time.Second)
		if !st.Running {
			t.Fatalf("library policy %s refused: %s", name, st.Error)
		}
	}
	covered := map[string]bool{}
	behaviours := libraryBehaviours(t, tmp)
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			covered[b.policy] = true
			pid := b.do(t)
			rec := waitFor(t, sink, b.policy+" event", func(r record) bool {
				return r.str(event.AttrSecurityRuleName) == b.policy && r.int(event.AttrProcessPID) == int64(pid) &&
					slices.Contains(strings.Split(b.hooks, "|"), r.str(event.AttrHook))
			})
			if got := rec.str(event.AttrSecurityRuleRulesetName); got != "vigil" {
				t.Errorf("security_rule.ruleset.name = %q, want vigil", got)
			}
			if rec.str(event.AttrSecurityRuleCategory) == "" || rec.str(event.AttrMessage) == "" || rec.lr.SeverityNumber() < plog.SeverityNumberWarn {
				t.Errorf("event lacks its rule: category %q, message %q, severity %v",
					rec.str(event.AttrSecurityRuleCategory), rec.str(event.AttrMessage), rec.lr.SeverityNumber())
			}
			if rec.str(event.AttrAction) != "Post" {
				t.Errorf("vigil.action = %q: the library is in monitor mode", rec.str(event.AttrAction))
			}
		})
	}
	for _, name := range policies.Names() {
		if !covered[name] {
			t.Errorf("library policy %s has no behaviour in libraryBehaviours", name)
		}
	}
	// Every selector of the library counts its matches too (Count), so
	// the detections are in the metrics by workload: each behaviour above
	// is at least one.
	counted := map[string]int64{}
	for k, p := range points(r.collectMetrics()) {
		if rest, ok := strings.CutPrefix(k, "vigil.policy.counts{"); ok {
			// Monitor mode: the kernel posts, whatever the selector
			// would do when enforced.
			if strings.Contains(rest, "vigil.action=Sigkill") || strings.Contains(rest, "vigil.action=Override") {
				t.Errorf("%s: the library is in monitor mode", k)
			}
			for _, name := range policies.Names() {
				if strings.Contains(rest, "security_rule.name="+name+",") {
					counted[name] += p.value
				}
			}
		}
	}
	for _, b := range behaviours {
		if counted[b.policy] < 1 {
			t.Errorf("library policy %s counted %d matches, want at least its behaviour %s", b.policy, counted[b.policy], b.name)
		}
	}

	// What is not an attack stays quiet: a netlink socket is SOCK_RAW
	// too (su opens one for audit, ip for routes).
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE); err == nil {
		unix.Close(fd)
	}
	passMarker(t, sink)
	if _, ok := findRecord(sink, func(r record) bool {
		args := r.lr.Attributes().AsRaw()[event.AttrArgs]
		return r.str(event.AttrSecurityRuleName) == "network" && r.str(event.AttrHook) == "sys_socket" &&
			r.int(event.AttrProcessPID) == int64(os.Getpid()) && strings.Contains(fmt.Sprint(args), "value:16")
	}); ok {
		t.Error("a netlink socket was reported as a raw socket")
	}
}

// TestLibraryEnforceKillsAndUserPolicyReplaces switches one library policy
// to enforce (a program run from /tmp is killed) and gives another's name
// to a file policy, which loads in its place without an error.
func TestLibraryEnforceKillsAndUserPolicyReplaces(t *testing.T) {
	tmp, err := os.MkdirTemp("/tmp", "vigil-library-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	dir := t.TempDir()
	writePolicy(t, dir, "mine.yaml", strings.Replace(fmt.Sprintf(openPolicy, "/vigil-no-such-file"), "name: watch-open", "name: network", 1))
	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{dir}
	cfg.Library = LibraryConfig{Enabled: true, Enforce: []string{"execution"}, Disabled: []string{"credential-access"}}
	r, _, logs := startReceiverLogged(t, cfg)
	st := waitForStatus(t, r, "execution", func(s policy.Status) bool { return s.Running || s.Error != "" }, 10*time.Second)
	if !st.Running || st.Mode != "enforce" {
		t.Fatalf("execution: loaded %v, mode %q, error %q; want loaded in enforce mode", st.Running, st.Mode, st.Error)
	}
	if st := waitForStatus(t, r, "network", func(s policy.Status) bool { return s.Running }, 10*time.Second); st.Source != filepath.Join(dir, "mine.yaml") {
		t.Errorf("network runs from %s, want the file", st.Source)
	}
	for _, st := range r.engine.Statuses() {
		if st.Name == "credential-access" {
			t.Errorf("credential-access is disabled but has a status: %+v", st)
		}
	}
	if n := logs.FilterMessage("policy refused").Len(); n != 0 {
		t.Errorf("%d refusals logged; a file policy replacing a library one is no error", n)
	}
	f := filepath.Join(tmp, "dropped")
	trueBin, _ := exec.LookPath("true")
	copyFile(t, trueBin, f, 0o755)
	err = exec.Command(f).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s ran with %v; want it killed by SIGKILL", f, err)
	}
}

// TestSecretsInCommandLinesAreRedacted: with the default filters, a
// password on a command line reaches no event, neither the exec nor the
// exit; the rest of the command line does.
func TestSecretsInCommandLinesAreRedacted(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	_, sink, _ := startReceiver(t, cfg)
	cmd := exec.Command("/bin/sh", "-c", "exit 0", "sh", "--password=hunter2", "--user", "bob")
	pid := run(t, cmd)
	for _, name := range []string{event.NameProcessExec, event.NameProcessExit} {
		rec := waitFor(t, sink, name, isEvent(name, pid))
		const want = "/bin/sh -c exit 0 sh --password=***** --user bob"
		if got := rec.str(event.AttrProcessCommandLine); got != want {
			t.Errorf("%s: command line %q, want %q", name, got, want)
		}
		if args := rec.args(); !slices.Contains(args, "--password=*****") || slices.Contains(args, "--password=hunter2") {
			t.Errorf("%s: args %q", name, args)
		}
	}
}
