package tetragonjson

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/tetragon/api/v1/tetragon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/process"
	"github.com/vigilsec/vigil/internal/stack"
)

// The processes the events are about, as the process cache holds them.
var (
	boot   = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	clock  = func(ns uint64) time.Time { return boot.Add(time.Duration(ns)) }
	at     = boot.Add(time.Hour)
	parent = &process.Process{ExecID: "bm9kZToxMDAwOjEw", PID: 10, TID: 10, Binary: "/usr/bin/bash", Args: []string{"bash"}}
	grand  = &process.Process{ExecID: "bm9kZTo1MDA6MQ==", PID: 1, TID: 1, Binary: "/sbin/init", Args: []string{"init"}}
	proc   = &process.Process{
		ExecID: "bm9kZToyMDAwOjQy", ParentExecID: parent.ExecID, PID: 42, TID: 42, PPID: 10,
		StartTime: 3_000_000_000, Binary: "/usr/bin/curl", Args: []string{"curl", "-s", "https://ebpf.io"},
		Cwd: "/home/x", UID: 1000, EUID: 1000, GID: 1000, EGID: 1000,
		CgroupName: "cri-containerd-" + containerID + ".scope",
		Context: &process.ExecContext{ExecContext: kernel.ExecContext{
			CapEffective: 1<<13 | 1<<21, CapPermitted: 1<<13 | 1<<21, AUID: 1000,
			Namespaces: kernel.Namespaces{Mnt: 4026532001, PID: 4026532002, Net: 4026532003, UTS: 4026532004,
				IPC: 4026532005, Cgroup: 4026532006, User: 4026531837, Time: 4026531834},
			SetUID: true, Memfd: true, InInitTree: true,
		}},
	}
)

const containerID = "4b2dc6a4cd8e1e3d4f0f07a12c2f3e6f6bd1ddbe5b52c0c6f7f6b4f0b6d2c0aa"

// events are one of each kind the receiver makes.
func events() []event.Event {
	hook := func(name, call string, args ...event.HookArg) event.Hook {
		return event.Hook{Time: at, Process: proc, Parent: parent, Ancestors: []*process.Process{grand},
			Name: name, Policy: "watch", Call: call, Actions: []string{"Sigkill"},
			Message: "a watched call", Tags: []string{"T1003.008", "credential-access"}, Args: args}
	}
	open := hook(event.NameProcessKprobe, "sys_openat",
		event.HookArg{Index: 0, Type: "int", Int: -100},
		event.HookArg{Index: 1, Type: "string", Str: "/etc/shadow", IsString: true},
		event.HookArg{Index: 2, Type: "fd", Label: "file", Str: "/etc/passwd", IsString: true})
	open.KernelStack = []stack.Frame{{Symbol: "do_sys_openat2", Offset: 0x4d}, {Symbol: "ext4_file_open", Offset: 0x12, Module: "ext4"}}
	ret := hook(event.NameProcessKprobe, "security_file_open")
	ret.Return, ret.Ret = true, -13
	return []event.Event{
		event.Exec{Time: at, Process: proc, Parent: parent, Ancestors: []*process.Process{grand}},
		event.Exit{Time: at, Process: proc, Parent: parent, Status: 9},
		open,
		ret,
		hook(event.NameProcessTracepoint, "syscalls/sys_enter_mount", event.HookArg{Index: 0, Type: "string", Str: "/dev/sda1", IsString: true}),
		hook(event.NameProcessUprobe, "/usr/bin/bash:readline"),
		hook(event.NameProcessUsdt, "/usr/lib/libc.so.6:libc:setjmp"),
		hook(event.NameProcessLSM, "file_open", event.HookArg{Index: 0, Type: "file", Str: "/etc/shadow", IsString: true}),
	}
}

// logs builds the records as the receiver does, then labels the
// container's resource as k8s_workload does.
func logs(t *testing.T) plog.Logs {
	t.Helper()
	b := event.NewBatch(event.Host{Name: "node-1", NodeName: "node-1"}, "test", clock)
	for _, e := range events() {
		b.Add(e, proc.CgroupName)
	}
	ld := b.Take()
	res := ld.ResourceLogs().At(0).Resource().Attributes()
	res.PutStr(event.AttrK8sNamespace, "shop")
	res.PutStr(event.AttrK8sPodName, "web-7c9d-x2x4z")
	res.PutStr(event.AttrK8sPodUID, "0f1e")
	res.PutStr(event.AttrK8sContainer, "web")
	res.PutStr(event.AttrContainerImageName, "nginx")
	res.PutEmptySlice(event.AttrContainerImageTags).AppendEmpty().SetStr("1.27")
	res.PutStr("k8s.replicaset.name", "web-7c9d")
	res.PutStr("k8s.deployment.name", "web")
	res.PutStr("k8s.pod.labels.app", "web")
	return ld
}

// decode reads an export back with Tetragon's own types, as a consumer of
// Tetragon's export files does.
func decode(t *testing.T, out []byte) []*tetragon.GetEventsResponse {
	t.Helper()
	var evs []*tetragon.GetEventsResponse
	for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		ev := &tetragon.GetEventsResponse{}
		if err := (protojson.UnmarshalOptions{}).Unmarshal(line, ev); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func wantProcess(t *testing.T, kind string, p *tetragon.Process) {
	t.Helper()
	if p == nil {
		t.Fatalf("%s: no process", kind)
	}
	check := func(field string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s: process.%s = %v, want %v", kind, field, got, want)
		}
	}
	check("exec_id", p.ExecId, proc.ExecID)
	check("parent_exec_id", p.ParentExecId, parent.ExecID)
	check("pid", p.GetPid().GetValue(), proc.PID)
	check("tid", p.GetTid().GetValue(), proc.TID)
	check("uid", p.GetUid().GetValue(), proc.EUID)
	check("binary", p.Binary, proc.Binary)
	check("arguments", p.Arguments, "-s https://ebpf.io")
	check("cwd", p.Cwd, proc.Cwd)
	check("flags", p.Flags, "execve")
	check("start_time", p.GetStartTime().AsTime(), clock(proc.StartTime))
	check("docker", p.Docker, containerID)
	pod := p.GetPod()
	check("pod.namespace", pod.GetNamespace(), "shop")
	check("pod.name", pod.GetName(), "web-7c9d-x2x4z")
	check("pod.uid", pod.GetUid(), "0f1e")
	check("pod.container.id", pod.GetContainer().GetId(), containerID)
	check("pod.container.name", pod.GetContainer().GetName(), "web")
	check("pod.container.image.name", pod.GetContainer().GetImage().GetName(), "nginx:1.27")
	check("pod.workload", pod.GetWorkload(), "web")
	check("pod.workload_kind", pod.GetWorkloadKind(), "Deployment")
	check("pod.pod_labels[app]", pod.GetPodLabels()["app"], "web")
}

func wantParent(t *testing.T, kind string, p *tetragon.Process) {
	t.Helper()
	if p.GetExecId() != parent.ExecID || p.GetPid().GetValue() != parent.PID || p.GetBinary() != parent.Binary {
		t.Errorf("%s: parent %v, want exec_id %s pid %d binary %s", kind, p, parent.ExecID, parent.PID, parent.Binary)
	}
}

func wantPolicy(t *testing.T, kind, policy, message string, tags []string, action tetragon.KprobeAction) {
	t.Helper()
	if policy != "watch" || message != "a watched call" || strings.Join(tags, ",") != "T1003.008,credential-access" ||
		action != tetragon.KprobeAction_KPROBE_ACTION_SIGKILL {
		t.Errorf("%s: policy %q message %q tags %v action %v", kind, policy, message, tags, action)
	}
}

// Every event kind goes out as Tetragon's JSON export and comes back
// through Tetragon's own types with the values it was made of.
func TestEveryEventKindRoundTripsThroughTetragonTypes(t *testing.T) {
	out, skipped, err := Marshal(logs(t))
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 0 {
		t.Errorf("%d records skipped, want none", skipped)
	}
	// Tetragon's export names fields as the proto does.
	for _, name := range []string{`"process_exec"`, `"node_name"`, `"exec_id"`, `"parent_exec_id"`} {
		if !bytes.Contains(out, []byte(name)) {
			t.Errorf("the export has no %s field: Tetragon writes proto field names", name)
		}
	}
	evs := decode(t, out)
	if len(evs) != len(events()) {
		t.Fatalf("%d events back, want %d", len(evs), len(events()))
	}
	for _, ev := range evs {
		if ev.NodeName != "node-1" || !ev.GetTime().AsTime().Equal(at) {
			t.Errorf("node_name %q time %v, want node-1 %v", ev.NodeName, ev.GetTime().AsTime(), at)
		}
	}

	exec := evs[0].GetProcessExec()
	wantProcess(t, "process_exec", exec.GetProcess())
	wantParent(t, "process_exec", exec.GetParent())
	if a := exec.GetAncestors(); len(a) != 1 || a[0].GetExecId() != grand.ExecID || a[0].GetBinary() != grand.Binary {
		t.Errorf("process_exec: ancestors %v, want %s", a, grand.Binary)
	}

	// The exec context, in Tetragon's fields.
	ep := exec.GetProcess()
	wantCaps := []tetragon.CapabilitiesType{tetragon.CapabilitiesType_CAP_NET_RAW, tetragon.CapabilitiesType_CAP_SYS_ADMIN}
	if c := ep.GetCap(); !slices.Equal(c.GetEffective(), wantCaps) || !slices.Equal(c.GetPermitted(), wantCaps) || len(c.GetInheritable()) != 0 {
		t.Errorf("process_exec: cap %v, want effective and permitted %v", c, wantCaps)
	}
	if ns := ep.GetNs(); ns.GetMnt().GetInum() != 4026532001 || ns.GetPid().GetInum() != 4026532002 || ns.GetUser().GetInum() != 4026531837 || ns.GetTime().GetInum() != 4026531834 {
		t.Errorf("process_exec: ns %v", ns)
	}
	if ep.GetAuid().GetValue() != 1000 || !ep.GetInInitTree().GetValue() {
		t.Errorf("process_exec: auid %v in_init_tree %v, want 1000 true", ep.GetAuid(), ep.GetInInitTree())
	}
	bp := ep.GetBinaryProperties()
	if bp.GetSetuid().GetValue() != proc.EUID || !slices.Equal(bp.GetPrivilegesChanged(), []tetragon.ProcessPrivilegesChanged{tetragon.ProcessPrivilegesChanged_PRIVILEGES_RAISED_EXEC_FILE_SETUID}) ||
		bp.GetFile().GetInode().GetLinks() == nil || bp.GetFile().GetInode().GetLinks().GetValue() != 0 {
		t.Errorf("process_exec: binary_properties %v, want setuid %d, raised by setuid, a file with 0 links", bp, proc.EUID)
	}
	if evs[1].GetProcessExit().GetProcess().GetCap() != nil {
		t.Error("process_exit: the exec context is the exec's alone")
	}

	exit := evs[1].GetProcessExit()
	wantProcess(t, "process_exit", exit.GetProcess())
	if exit.GetSignal() != "SIGKILL" || !exit.GetTime().AsTime().Equal(at) {
		t.Errorf("process_exit: signal %q time %v, want SIGKILL", exit.GetSignal(), exit.GetTime())
	}

	k := evs[2].GetProcessKprobe()
	wantProcess(t, "process_kprobe", k.GetProcess())
	wantParent(t, "process_kprobe", k.GetParent())
	wantPolicy(t, "process_kprobe", k.GetPolicyName(), k.GetMessage(), k.GetTags(), k.GetAction())
	if k.GetFunctionName() != "sys_openat" {
		t.Errorf("function_name %q", k.GetFunctionName())
	}
	if a := k.GetArgs(); len(a) != 3 || a[0].GetIntArg() != -100 || a[1].GetStringArg() != "/etc/shadow" ||
		a[2].GetFileArg().GetPath() != "/etc/passwd" || a[2].GetLabel() != "file" {
		t.Errorf("process_kprobe args %v", a)
	}
	if s := k.GetKernelStackTrace(); len(s) != 2 || s[0].GetSymbol() != "do_sys_openat2" || s[0].GetOffset() != 0x4d ||
		s[1].GetModule() != "ext4" || s[1].GetSymbol() != "ext4_file_open" {
		t.Errorf("kernel_stack_trace %v", s)
	}
	if r := evs[3].GetProcessKprobe().GetReturn(); r.GetLongArg() != -13 {
		t.Errorf("return %v, want -13", r)
	}

	tp := evs[4].GetProcessTracepoint()
	wantProcess(t, "process_tracepoint", tp.GetProcess())
	wantPolicy(t, "process_tracepoint", tp.GetPolicyName(), tp.GetMessage(), tp.GetTags(), tp.GetAction())
	if tp.GetSubsys() != "syscalls" || tp.GetEvent() != "sys_enter_mount" || tp.GetArgs()[0].GetStringArg() != "/dev/sda1" {
		t.Errorf("process_tracepoint %s/%s %v", tp.GetSubsys(), tp.GetEvent(), tp.GetArgs())
	}

	up := evs[5].GetProcessUprobe()
	wantProcess(t, "process_uprobe", up.GetProcess())
	wantPolicy(t, "process_uprobe", up.GetPolicyName(), up.GetMessage(), up.GetTags(), up.GetAction())
	if up.GetPath() != "/usr/bin/bash" || up.GetSymbol() != "readline" {
		t.Errorf("process_uprobe %s %s", up.GetPath(), up.GetSymbol())
	}

	us := evs[6].GetProcessUsdt()
	wantProcess(t, "process_usdt", us.GetProcess())
	wantPolicy(t, "process_usdt", us.GetPolicyName(), us.GetMessage(), us.GetTags(), us.GetAction())
	if us.GetPath() != "/usr/lib/libc.so.6" || us.GetProvider() != "libc" || us.GetName() != "setjmp" {
		t.Errorf("process_usdt %s %s %s", us.GetPath(), us.GetProvider(), us.GetName())
	}

	lsm := evs[7].GetProcessLsm()
	wantProcess(t, "process_lsm", lsm.GetProcess())
	wantPolicy(t, "process_lsm", lsm.GetPolicyName(), lsm.GetMessage(), lsm.GetTags(), lsm.GetAction())
	if lsm.GetFunctionName() != "file_open" || lsm.GetArgs()[0].GetFileArg().GetPath() != "/etc/shadow" {
		t.Errorf("process_lsm %s %v", lsm.GetFunctionName(), lsm.GetArgs())
	}
}

// An enforcement record has no Tetragon event: it is counted, not written.
func TestRecordsWithoutATetragonEventAreSkipped(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(event.NameEnforcementAction)
	out, skipped, err := Marshal(ld)
	if err != nil || skipped != 1 || len(out) != 0 {
		t.Errorf("Marshal: %q, %d skipped, %v; want nothing written and 1 skipped", out, skipped, err)
	}
}
