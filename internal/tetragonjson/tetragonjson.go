// Package tetragonjson turns Vigil's event records into Tetragon's export
// format: one GetEventsResponse (github.com/cilium/tetragon/api, v1.6.0)
// per record, written as Tetragon writes its JSON export (protojson with the
// proto field names: process_exec, node_name...), so that what reads
// Tetragon's export files reads Vigil's.
//
// Only what Vigil's records hold is filled: Tetragon fields Vigil does not
// observe (capabilities, namespaces and credentials on exec, auid) stay
// empty, as Tetragon leaves them without its matching flags. Records with
// no Tetragon counterpart (enforcement.action) are left out.
package tetragonjson

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/tetragon/api/v1/tetragon"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/vigilsec/vigil/internal/event"
)

// Options are how the JSON is written: Tetragon's export writes proto
// field names and leaves unset fields out.
var Options = protojson.MarshalOptions{UseProtoNames: true}

// Marshal returns the records of ld as Tetragon export lines, separated by
// newlines (the file exporter ends the last), and how many records had no
// Tetragon counterpart.
func Marshal(ld plog.Logs) (out []byte, skipped int, err error) {
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource().Attributes()
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				ev, ok := Event(res, lr)
				if !ok {
					skipped++
					continue
				}
				b, err := Options.Marshal(ev)
				if err != nil {
					return nil, skipped, fmt.Errorf("tetragon json: %s: %w", lr.EventName(), err)
				}
				if len(out) > 0 {
					out = append(out, '\n')
				}
				out = append(out, b...)
			}
		}
	}
	return out, skipped, nil
}

// Event converts one record, with its resource, to a GetEventsResponse.
// ok is false for a record Tetragon has no event for.
func Event(res pcommon.Map, lr plog.LogRecord) (ev *tetragon.GetEventsResponse, ok bool) {
	a := lr.Attributes()
	ev = &tetragon.GetEventsResponse{
		NodeName: nodeName(res),
		Time:     timestamppb.New(lr.Timestamp().AsTime()),
	}
	p, parent, ancestors := processOf(res, a), parentOf(a), ancestorsOf(a)
	switch lr.EventName() {
	case event.NameProcessExec:
		ev.Event = &tetragon.GetEventsResponse_ProcessExec{ProcessExec: &tetragon.ProcessExec{
			Process: p, Parent: parent, Ancestors: ancestors,
		}}
	case event.NameProcessExit:
		exit := &tetragon.ProcessExit{Process: p, Parent: parent, Ancestors: ancestors,
			Signal: str(a, event.AttrExitSignal), Time: ev.Time}
		if v, ok := a.Get(event.AttrProcessExitCode); ok {
			exit.Status = uint32(v.Int())
		}
		ev.Event = &tetragon.GetEventsResponse_ProcessExit{ProcessExit: exit}
	case event.NameProcessKprobe:
		k := &tetragon.ProcessKprobe{Process: p, Parent: parent, Ancestors: ancestors,
			FunctionName: str(a, event.AttrHook), Args: args(a), Data: argList(a, event.AttrData), Action: action(a),
			PolicyName: str(a, event.AttrSecurityRuleName), Message: str(a, event.AttrMessage),
			Tags: strs(a, event.AttrTags), KernelStackTrace: stackOf(a, event.AttrKernelStackTrace),
			UserStackTrace: stackOf(a, event.AttrUserStackTrace)}
		if v, ok := a.Get(event.AttrReturn); ok {
			k.Return = &tetragon.KprobeArgument{Arg: &tetragon.KprobeArgument_LongArg{LongArg: v.Int()}}
		}
		ev.Event = &tetragon.GetEventsResponse_ProcessKprobe{ProcessKprobe: k}
	case event.NameProcessTracepoint:
		subsys, name, _ := strings.Cut(str(a, event.AttrHook), "/")
		ev.Event = &tetragon.GetEventsResponse_ProcessTracepoint{ProcessTracepoint: &tetragon.ProcessTracepoint{
			Process: p, Parent: parent, Ancestors: ancestors, Subsys: subsys, Event: name,
			Args: args(a), Action: action(a), PolicyName: str(a, event.AttrSecurityRuleName),
			Message: str(a, event.AttrMessage), Tags: strs(a, event.AttrTags),
		}}
	case event.NameProcessUprobe:
		path, symbol := splitProbe(str(a, event.AttrHook))
		ev.Event = &tetragon.GetEventsResponse_ProcessUprobe{ProcessUprobe: &tetragon.ProcessUprobe{
			Process: p, Parent: parent, Ancestors: ancestors, Path: path, Symbol: symbol,
			Args: args(a), Action: action(a), PolicyName: str(a, event.AttrSecurityRuleName),
			Message: str(a, event.AttrMessage), Tags: strs(a, event.AttrTags),
		}}
	case event.NameProcessUsdt:
		path, probe := splitProbe(str(a, event.AttrHook))
		provider, name, _ := strings.Cut(probe, ":")
		ev.Event = &tetragon.GetEventsResponse_ProcessUsdt{ProcessUsdt: &tetragon.ProcessUsdt{
			Process: p, Parent: parent, Ancestors: ancestors, Path: path, Provider: provider, Name: name,
			Args: args(a), Action: action(a), PolicyName: str(a, event.AttrSecurityRuleName),
			Message: str(a, event.AttrMessage), Tags: strs(a, event.AttrTags),
		}}
	case event.NameProcessLoader:
		id, _ := hex.DecodeString(str(a, event.AttrLoaderBuildID))
		ev.Event = &tetragon.GetEventsResponse_ProcessLoader{ProcessLoader: &tetragon.ProcessLoader{
			Process: p, Path: str(a, event.AttrFilePath), Buildid: id,
		}}
	case event.NameProcessLSM:
		ev.Event = &tetragon.GetEventsResponse_ProcessLsm{ProcessLsm: &tetragon.ProcessLsm{
			Process: p, Parent: parent, Ancestors: ancestors, FunctionName: str(a, event.AttrHook),
			Args: args(a), Action: action(a), PolicyName: str(a, event.AttrSecurityRuleName),
			Message: str(a, event.AttrMessage), Tags: strs(a, event.AttrTags), ImaHash: str(a, event.AttrImaHash),
		}}
	default:
		return nil, false
	}
	return ev, true
}

// splitProbe splits a uprobe or USDT hook, "binary:target", at its first
// colon after the path.
func splitProbe(hook string) (path, target string) {
	if i := strings.IndexByte(hook, ':'); i >= 0 {
		return hook[:i], hook[i+1:]
	}
	return hook, ""
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func strs(m pcommon.Map, k string) []string {
	v, ok := m.Get(k)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	out := make([]string, 0, v.Slice().Len())
	for _, e := range v.Slice().All() {
		out = append(out, e.AsString())
	}
	return out
}

func uint32Value(m pcommon.Map, k string) *wrapperspb.UInt32Value {
	v, ok := m.Get(k)
	if !ok {
		return nil
	}
	return wrapperspb.UInt32(uint32(v.Int()))
}

// nodeName is the node the event comes from: k8s.node.name in a cluster,
// else the host's name.
func nodeName(res pcommon.Map) string {
	if n := str(res, event.AttrK8sNodeName); n != "" {
		return n
	}
	return str(res, event.AttrHostName)
}

// processOf builds the event's process: Tetragon's arguments exclude
// argv[0], joined by spaces.
func processOf(res, a pcommon.Map) *tetragon.Process {
	p := &tetragon.Process{
		ExecId:       str(a, event.AttrExecID),
		Pid:          uint32Value(a, event.AttrProcessPID),
		Uid:          uint32Value(a, event.AttrProcessUserID),
		Cwd:          str(a, event.AttrProcessWorkingDir),
		Binary:       str(a, event.AttrProcessExecutablePath),
		ParentExecId: str(a, event.AttrParentExecID),
		Tid:          uint32Value(a, event.AttrTID),
		Flags:        "execve",
	}
	if p.Tid == nil {
		p.Tid = p.Pid
	}
	if args := strs(a, event.AttrProcessCommandArgs); len(args) > 1 {
		p.Arguments = strings.Join(args[1:], " ")
	}
	if v, ok := a.Get(event.AttrProcFS); ok && v.Bool() {
		p.Flags = "procFS"
	}
	if t, err := time.Parse(time.RFC3339Nano, str(a, event.AttrProcessCreationTime)); err == nil {
		p.StartTime = timestamppb.New(t)
	}
	if id := str(res, event.AttrContainerID); id != "" {
		p.Docker = id
	}
	p.Pod = podOf(res)
	contextOf(a, p)
	return p
}

// contextOf fills what an exec event says of the process's security
// context: Tetragon's cap, ns, auid, binary_properties and in_init_tree.
func contextOf(a pcommon.Map, p *tetragon.Process) {
	if _, ok := a.Get(event.AttrCapEffective); ok {
		p.Cap = &tetragon.Capabilities{
			Permitted:   capList(a, event.AttrCapPermitted),
			Effective:   capList(a, event.AttrCapEffective),
			Inheritable: capList(a, event.AttrCapInheritable),
		}
	}
	if v, ok := a.Get(event.AttrNamespaces); ok && v.Type() == pcommon.ValueTypeMap {
		m := v.Map()
		ns := func(name string) *tetragon.Namespace {
			if n, ok := m.Get(name); ok {
				return &tetragon.Namespace{Inum: uint32(n.Int())}
			}
			return nil
		}
		p.Ns = &tetragon.Namespaces{Uts: ns("uts"), Ipc: ns("ipc"), Mnt: ns("mnt"), Pid: ns("pid"), Net: ns("net"),
			Time: ns("time"), Cgroup: ns("cgroup"), User: ns("user")}
	}
	p.Auid = uint32Value(a, event.AttrAUID)
	if v, ok := a.Get(event.AttrInInitTree); ok {
		p.InInitTree = wrapperspb.Bool(v.Bool())
	}
	var bp tetragon.BinaryProperties
	for _, r := range strs(a, event.AttrPrivilegesRaised) {
		switch r {
		case event.PrivilegeSetUID:
			bp.Setuid = uint32Value(a, event.AttrProcessUserID)
			bp.PrivilegesChanged = append(bp.PrivilegesChanged, tetragon.ProcessPrivilegesChanged_PRIVILEGES_RAISED_EXEC_FILE_SETUID)
		case event.PrivilegeSetGID:
			bp.Setgid = uint32Value(a, event.AttrProcessGroupID)
			bp.PrivilegesChanged = append(bp.PrivilegesChanged, tetragon.ProcessPrivilegesChanged_PRIVILEGES_RAISED_EXEC_FILE_SETGID)
		case event.PrivilegeFileCapabilities:
			bp.PrivilegesChanged = append(bp.PrivilegesChanged, tetragon.ProcessPrivilegesChanged_PRIVILEGES_RAISED_EXEC_FILE_CAP)
		}
	}
	if f := str(a, event.AttrExecFile); f == event.ExecFileMemfd || f == event.ExecFileDeleted {
		// Tetragon reports such files with their link count, 0.
		bp.File = &tetragon.FileProperties{Path: p.Binary, Inode: &tetragon.InodeProperties{Links: wrapperspb.UInt32(0)}}
	}
	if bp.Setuid != nil || bp.Setgid != nil || bp.PrivilegesChanged != nil || bp.File != nil {
		p.BinaryProperties = &bp
	}
}

// capList turns a capability mask into Tetragon's list: the enum's values
// are the capability numbers.
func capList(a pcommon.Map, k string) []tetragon.CapabilitiesType {
	v, ok := a.Get(k)
	if !ok {
		return nil
	}
	var out []tetragon.CapabilitiesType
	for mask, bit := uint64(v.Int()), 0; bit < 64; bit++ {
		if mask&(1<<bit) != 0 {
			out = append(out, tetragon.CapabilitiesType(bit))
		}
	}
	return out
}

// workloadKinds are the owner attributes k8s_workload sets, most specific
// last: Tetragon names the top-level controller.
var workloadKinds = []struct{ attr, kind string }{
	{"k8s.replicaset.name", "ReplicaSet"},
	{"k8s.job.name", "Job"},
	{"k8s.statefulset.name", "StatefulSet"},
	{"k8s.daemonset.name", "DaemonSet"},
	{"k8s.deployment.name", "Deployment"},
	{"k8s.cronjob.name", "CronJob"},
}

func podOf(res pcommon.Map) *tetragon.Pod {
	name := str(res, event.AttrK8sPodName)
	if name == "" {
		return nil
	}
	pod := &tetragon.Pod{Namespace: str(res, event.AttrK8sNamespace), Name: name, Uid: str(res, event.AttrK8sPodUID)}
	if id := str(res, event.AttrContainerID); id != "" {
		image := str(res, event.AttrContainerImageName)
		if tags := strs(res, event.AttrContainerImageTags); len(tags) > 0 {
			image += ":" + tags[0]
		}
		pod.Container = &tetragon.Container{Id: id, Name: str(res, event.AttrK8sContainer), Image: &tetragon.Image{Name: image}}
	}
	for _, w := range workloadKinds {
		if n := str(res, w.attr); n != "" {
			pod.Workload, pod.WorkloadKind = n, w.kind
		}
	}
	const labelPrefix = "k8s.pod.labels."
	for k, v := range res.All() {
		if l, ok := strings.CutPrefix(k, labelPrefix); ok {
			if pod.PodLabels == nil {
				pod.PodLabels = map[string]string{}
			}
			pod.PodLabels[l] = v.AsString()
		}
	}
	return pod
}

// parentOf is the parent as Vigil's records name it: its exec id, pid and
// binary.
func parentOf(a pcommon.Map) *tetragon.Process {
	id := str(a, event.AttrParentExecID)
	if id == "" {
		return nil
	}
	return &tetragon.Process{ExecId: id, Pid: uint32Value(a, event.AttrProcessParentPID),
		Binary: str(a, event.AttrParentExecutablePath), Flags: "execve"}
}

func ancestorsOf(a pcommon.Map) []*tetragon.Process {
	v, ok := a.Get(event.AttrAncestors)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	var out []*tetragon.Process
	for _, e := range v.Slice().All() {
		if e.Type() != pcommon.ValueTypeMap {
			continue
		}
		m := e.Map()
		out = append(out, &tetragon.Process{ExecId: str(m, event.AttrExecID), Pid: uint32Value(m, event.AttrProcessPID),
			Binary: str(m, event.AttrProcessExecutablePath), Flags: "execve"})
	}
	return out
}

// actions maps Vigil's action names (TracingPolicy's) to Tetragon's enum.
var actions = map[string]tetragon.KprobeAction{
	"Post":        tetragon.KprobeAction_KPROBE_ACTION_POST,
	"Sigkill":     tetragon.KprobeAction_KPROBE_ACTION_SIGKILL,
	"Signal":      tetragon.KprobeAction_KPROBE_ACTION_SIGNAL,
	"Override":    tetragon.KprobeAction_KPROBE_ACTION_OVERRIDE,
	"NoPost":      tetragon.KprobeAction_KPROBE_ACTION_NOPOST,
	"GetUrl":      tetragon.KprobeAction_KPROBE_ACTION_GETURL,
	"DnsLookup":   tetragon.KprobeAction_KPROBE_ACTION_DNSLOOKUP,
	"TrackSock":   tetragon.KprobeAction_KPROBE_ACTION_TRACKSOCK,
	"UntrackSock": tetragon.KprobeAction_KPROBE_ACTION_UNTRACKSOCK,
}

// action is what the kernel did, the first of vigil.action's list
// ("Sigkill", "Post,GetUrl") that Tetragon has: Vigil's Count is not one.
func action(a pcommon.Map) tetragon.KprobeAction {
	for name := range strings.SplitSeq(str(a, event.AttrAction), ",") {
		if k, ok := actions[name]; ok {
			return k
		}
	}
	return tetragon.KprobeAction_KPROBE_ACTION_UNKNOWN
}

// args converts vigil.args, each a map {index, type, label, value, ...},
// to Tetragon's typed arguments: paths of fds and files as file_arg, of
// path arguments as path_arg, integers as int_arg (long_arg beyond 32
// bits), and the rest as string_arg holding Vigil's rendering.
func args(a pcommon.Map) []*tetragon.KprobeArgument { return argList(a, event.AttrArgs) }

// argList converts the list of arguments (or data entries) at key.
func argList(a pcommon.Map, key string) []*tetragon.KprobeArgument {
	v, ok := a.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	out := make([]*tetragon.KprobeArgument, 0, v.Slice().Len())
	for _, e := range v.Slice().All() {
		if e.Type() != pcommon.ValueTypeMap {
			continue
		}
		m := e.Map()
		arg := &tetragon.KprobeArgument{Label: str(m, "label")}
		val, _ := m.Get("value")
		switch typ := str(m, "type"); {
		case typ == "fd" || typ == "file" || typ == "kiocb":
			arg.Arg = &tetragon.KprobeArgument_FileArg{FileArg: &tetragon.KprobeFile{Path: val.AsString()}}
		case typ == "path":
			arg.Arg = &tetragon.KprobeArgument_PathArg{PathArg: &tetragon.KprobePath{Path: val.AsString()}}
		case typ == "linux_binprm":
			arg.Arg = &tetragon.KprobeArgument_LinuxBinprmArg{LinuxBinprmArg: &tetragon.KprobeLinuxBinprm{Path: val.AsString()}}
		case typ == "char_buf" || typ == "char_iovec" || typ == "iov_iter":
			arg.Arg = &tetragon.KprobeArgument_BytesArg{BytesArg: []byte(val.AsString())}
		case val.Type() == pcommon.ValueTypeInt:
			if n := val.Int(); n >= -1<<31 && n < 1<<31 {
				arg.Arg = &tetragon.KprobeArgument_IntArg{IntArg: int32(n)}
			} else {
				arg.Arg = &tetragon.KprobeArgument_LongArg{LongArg: n}
			}
		default:
			arg.Arg = &tetragon.KprobeArgument_StringArg{StringArg: val.AsString()}
		}
		out = append(out, arg)
	}
	return out
}

// stackOf parses the frames Vigil renders ("[0xaddr: ]symbol+0xoff
// [module]", "symbol+0xoff (file+0xoff)").
func stackOf(a pcommon.Map, k string) []*tetragon.StackTraceEntry {
	var out []*tetragon.StackTraceEntry
	for _, f := range strs(a, k) {
		e := &tetragon.StackTraceEntry{}
		if addr, rest, ok := strings.Cut(f, ": "); ok && strings.HasPrefix(addr, "0x") {
			e.Address, _ = strconv.ParseUint(addr[2:], 16, 64)
			f = rest
		}
		if sym, module, ok := strings.Cut(f, " ["); ok {
			e.Module = strings.TrimSuffix(module, "]")
			f = sym
		} else if sym, file, ok := strings.Cut(f, " ("); ok {
			file = strings.TrimSuffix(file, ")")
			if name, _, ok := strings.Cut(file, "+0x"); ok {
				e.Module = name
			}
			f = sym
		}
		if sym, off, ok := strings.Cut(f, "+0x"); ok {
			e.Symbol = sym
			e.Offset, _ = strconv.ParseUint(off, 16, 64)
		} else if f != "?" && !strings.HasPrefix(f, "0x") {
			e.Symbol = f
		}
		out = append(out, e)
	}
	return out
}
