package kernel

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Feature is one kernel capability Vigil can use, as probed on this kernel.
type Feature struct {
	Name string
	// Err is nil when the feature works; ebpf.ErrNotSupported (wrapped)
	// when the kernel lacks it; another error when probing it failed, for
	// example because a security module refused the load (EPERM).
	Err error
}

// Available reports whether the feature works.
func (f Feature) Available() bool { return f.Err == nil }

// Features is what Probe found.
type Features []Feature

// Has reports whether the named feature works.
func (fs Features) Has(name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return f.Available()
		}
	}
	return false
}

// Feature names, as `vigil probe` prints them.
const (
	FeatureBTF     = "btf"
	FeatureRingBuf = "ring_buffer"
	// FeatureBPFLoop: without it (before 5.17) the sensor loads its
	// compat object (sensorSpec), which refuses substring operators.
	FeatureBPFLoop = "bpf_loop"
	// FeatureAttachCookie: kprobes, uprobes and tracepoints find their
	// hook by the link's cookie (5.15).
	FeatureAttachCookie = "bpf_get_attach_cookie"
	FeatureTPBTF        = "tp_btf"
	FeatureRawTP        = "raw_tracepoint"
	FeatureKprobe       = "kprobe"
	FeatureKprobeMulti  = "kprobe_multi"
	FeatureFentry       = "fentry"
	// FeatureFuncArgs: fentry programs read their function's arguments
	// by number with bpf_get_func_arg (5.17).
	FeatureFuncArgs = "bpf_get_func_arg"
	// FeatureSyscallFmodRet: fmod_ret on syscall functions, which the
	// kernel allows only with its error injection list
	// (CONFIG_FUNCTION_ERROR_INJECTION): Override on syscall hooks.
	FeatureSyscallFmodRet = "fmod_ret_syscalls"
	FeatureLSM            = "bpf_lsm"
	FeatureOverride       = "bpf_override_return"
	FeatureSendSignal     = "bpf_send_signal"
	FeatureUprobe         = "uprobe"
	FeatureUprobeMulti    = "uprobe_multi"
	FeatureCgroupSockets  = "cgroup_sock_addr"
)

// Probe asks the running kernel what it offers. It needs the privileges of
// LoadSensor to give exact answers; without them most probes fail with
// EPERM, which the result says.
func Probe() Features {
	// Without this, old kernels refuse loads for want of locked memory,
	// which would read as missing features.
	_ = rlimit.RemoveMemlock()
	fs := Features{
		{FeatureBTF, probeBTF()},
		{FeatureRingBuf, features.HaveMapType(ebpf.RingBuf)},
		{FeatureBPFLoop, features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop)},
		{FeatureAttachCookie, features.HaveProgramHelper(ebpf.Kprobe, asm.FnGetAttachCookie)},
		{FeatureTPBTF, probeTracing(ebpf.AttachTraceRawTp, "sched_process_exec")},
		{FeatureRawTP, features.HaveProgramType(ebpf.RawTracepoint)},
		{FeatureKprobe, probePMU("kprobe")},
		{FeatureKprobeMulti, features.HaveBPFLinkKprobeMulti()},
		{FeatureFentry, probeTracing(ebpf.AttachTraceFEntry, "security_file_open")},
		{FeatureFuncArgs, probeFuncArgs()},
		{FeatureSyscallFmodRet, probeTracing(ebpf.AttachModifyReturn, syscallWrapper("openat"))},
		{FeatureLSM, probeLSM()},
		{FeatureOverride, features.HaveProgramHelper(ebpf.Kprobe, asm.FnOverrideReturn)},
		{FeatureSendSignal, features.HaveProgramHelper(ebpf.Kprobe, asm.FnSendSignal)},
		{FeatureUprobe, probePMU("uprobe")},
		{FeatureUprobeMulti, features.HaveBPFLinkUprobeMulti()},
		{FeatureCgroupSockets, features.HaveProgramType(ebpf.CGroupSockAddr)},
	}
	return fs
}

func probeBTF() error {
	if _, err := btf.LoadKernelSpec(); err != nil {
		return fmt.Errorf("%w: %v", ebpf.ErrNotSupported, err)
	}
	return nil
}

// probePMU checks for the perf event source that kprobes or uprobes attach
// through: it exists only when the kernel was built with them.
func probePMU(name string) error {
	if _, err := os.Stat("/sys/bus/event_source/devices/" + name); err != nil {
		return fmt.Errorf("%w: no %s perf event source (CONFIG_%sS)", ebpf.ErrNotSupported, name, strings.ToUpper(name))
	}
	return nil
}

// probeTracing loads a minimal BTF-attached program of the given attach
// type, and attaches it for a moment: it does nothing, and fmod_ret's 0
// leaves the return value alone. A kernel can know the program type and
// still refuse it, as some hardened or virtualised kernels refuse fentry
// with EPERM; and load it but not attach it, as Debian's arm64 6.1, which
// has no BPF trampoline there ("create raw tracepoint: not supported").
func probeTracing(at ebpf.AttachType, target string) error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: at, AttachTo: target, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return refusal(err)
	}
	defer p.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: p})
	if err != nil {
		return unattachable(at.String(), err)
	}
	return l.Close()
}

// unattachable words an attach the kernel refused after the load.
func unattachable(kind string, err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%w: the kernel loads %s programs but cannot attach them (no BPF trampoline): %v", ebpf.ErrNotSupported, kind, err)
	}
	return refusal(err)
}

// refusal words a load that the kernel refused although it knows the
// program type.
func refusal(err error) error {
	if errors.Is(err, unix.EPERM) {
		return errors.New("the kernel refuses to load such programs (EPERM): a security policy or the hypervisor forbids them")
	}
	return err
}

// probeFuncArgs checks that an fentry program may call
// bpf_get_func_arg_cnt, of the family Vigil's fentry programs read their
// arguments with. A kernel that refuses fentry altogether says so instead.
var probeFuncArgs = sync.OnceValue(func() error {
	if err := probeTracing(ebpf.AttachTraceFEntry, "security_file_open"); err != nil {
		return err
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: "security_file_open", License: "GPL",
		Instructions: asm.Instructions{asm.FnGetFuncArgCnt.Call(), asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if errors.Is(err, unix.EINVAL) {
		// The verifier's "invalid func unknown#185".
		return fmt.Errorf("%w: bpf_get_func_arg needs Linux 5.17", ebpf.ErrNotSupported)
	}
	if err != nil {
		return refusal(err)
	}
	return p.Close()
})

// probeLSM checks that BPF is an active LSM and that an LSM program loads.
// Without "bpf" in the LSM list, programs attach but never run.
func probeLSM() error {
	if err := probeLSMActive(); err != nil {
		return err
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "file_open", License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return refusal(err)
	}
	defer p.Close()
	// Returning 0 allows every open, as no LSM program would.
	l, err := link.AttachLSM(link.LSMOptions{Program: p})
	if err != nil {
		return unattachable("LSM", err)
	}
	return l.Close()
}

// probeLSMActive checks that "bpf" is in the active LSMs, mounting
// securityfs to read them.
func probeLSMActive() error {
	if err := ensureMounted("securityfs", unix.SECURITYFS_MAGIC, "/sys/kernel/security"); err != nil {
		return err
	}
	list, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		return fmt.Errorf("reading the active LSMs (is securityfs mounted at /sys/kernel/security?): %w", err)
	}
	if !strings.Contains(","+strings.TrimSpace(string(list))+",", ",bpf,") {
		return fmt.Errorf("%w: bpf is not in the active LSMs (%s); boot with lsm=...,bpf", ebpf.ErrNotSupported, strings.TrimSpace(string(list)))
	}
	return nil
}
