package event

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/process"
	"github.com/vigilsec/vigil/internal/stack"
)

// HookArg is one argument a policy hook read, as the policy declared it.
type HookArg struct {
	Index     uint32
	Type      string // the policy's type name: "int", "string", "fd", ...
	Label     string
	Int       int64
	Str       string
	IsString  bool
	Truncated bool
	// Names name an integer's value: a capability, the capabilities of a
	// set.
	Names []string
	// Source is where a data entry was read ("current_task", "pt_regs");
	// empty for an argument.
	Source string
}

// Hook is a policy hook that fired and that a selector chose to report.
type Hook struct {
	Time      time.Time
	Process   *process.Process
	Parent    *process.Process
	Ancestors []*process.Process

	// Name is the event name: NameProcessKprobe, NameProcessTracepoint...
	Name   string
	Policy string
	// Call is the hooked function as the policy names it ("sys_openat").
	Call    string
	Actions []string
	Message string
	Tags    []string
	// Rule is the policy's description of itself as a detection.
	Rule policy.Rule
	Args []HookArg
	// Return is set for events made at return; Ret is then the value.
	Return bool
	Ret    int64
	// KernelStack and UserStack are the stacks the selector asked for.
	// Addresses set to 0 are not shown (stack addresses reveal where the
	// kernel and libraries are loaded, which KASLR and ASLR hide).
	KernelStack []stack.Frame
	UserStack   []stack.Frame
	// BuildID is a loader event's file's GNU build id, in hex.
	BuildID string
	// ImaHash is the IMA hash of an LSM hook's file (Post imaHash).
	ImaHash string
}

func (h Hook) fill(lr plog.LogRecord, pa *processAttrs) {
	lr.SetEventName(h.Name)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(h.Time))
	attrs := lr.Attributes()
	// Room for the rule, hook, action, args and file path; the rarer
	// ones grow the map.
	pa.put(attrs, h.Process, h.Parent, h.Ancestors, 5)
	attrs.PutStr(AttrSecurityRuleName, h.Policy)
	ruleFill(&h.Rule, lr)
	attrs.PutStr(AttrHook, h.Call)
	attrs.PutStr(AttrAction, strings.Join(h.Actions, ","))
	if h.Message != "" {
		attrs.PutStr(AttrMessage, h.Message)
	}
	if len(h.Tags) > 0 {
		tags := attrs.PutEmptySlice(AttrTags)
		for _, t := range h.Tags {
			tags.AppendEmpty().SetStr(t)
		}
	}
	args := attrs.PutEmptySlice(AttrArgs)
	args.EnsureCapacity(len(h.Args))
	var data pcommon.Slice
	for _, a := range h.Args {
		list := args
		if a.Source != "" {
			if data == (pcommon.Slice{}) {
				data = attrs.PutEmptySlice(AttrData)
			}
			list = data
		}
		m := list.AppendEmpty().SetEmptyMap()
		if a.Source != "" {
			m.PutStr("source", a.Source)
		} else {
			m.PutInt("index", int64(a.Index))
		}
		m.PutStr("type", a.Type)
		if a.Label != "" {
			m.PutStr("label", a.Label)
		}
		if a.IsString {
			m.PutStr("value", a.Str)
		} else {
			m.PutInt("value", a.Int)
		}
		if a.Names != nil {
			names := m.PutEmptySlice("names")
			for _, n := range a.Names {
				names.AppendEmpty().SetStr(n)
			}
		}
		if a.Truncated {
			m.PutBool("truncated", true)
		}
	}
	if h.Return {
		attrs.PutInt(AttrReturn, h.Ret)
	}
	putStack(attrs, AttrKernelStackTrace, h.KernelStack, KernelFrame)
	putStack(attrs, AttrUserStackTrace, h.UserStack, UserFrame)
	if p := h.FilePath(); p != "" {
		attrs.PutStr(AttrFilePath, p)
	}
	if h.BuildID != "" {
		attrs.PutStr(AttrLoaderBuildID, h.BuildID)
	}
	if h.ImaHash != "" {
		attrs.PutStr(AttrImaHash, h.ImaHash)
	}
	// The first socket argument says where the event goes (and, for a
	// sock, from where and over what).
	for _, a := range h.Args {
		if sk, ok := a.Sock(); ok {
			attrs.PutStr(AttrNetworkTransport, sk.Transport)
			attrs.PutStr(AttrSourceAddress, sk.Source.Addr().String())
			attrs.PutInt(AttrSourcePort, int64(sk.Source.Port()))
		}
		if dst, ok := a.Destination(); ok {
			attrs.PutStr(AttrDestinationAddress, dst.Addr().String())
			attrs.PutInt(AttrDestinationPort, int64(dst.Port()))
			break
		}
	}
	lr.Body().SetStr(h.summary())
}

func putStack(attrs pcommon.Map, key string, frames []stack.Frame, format func(stack.Frame) string) {
	if len(frames) == 0 {
		return
	}
	s := attrs.PutEmptySlice(key)
	s.EnsureCapacity(len(frames))
	for _, f := range frames {
		s.AppendEmpty().SetStr(format(f))
	}
}

// KernelFrame renders a kernel stack frame as AttrKernelStackTrace holds it:
// "symbol+0xoff", "symbol+0xoff [module]", after "0xaddr: " when the
// address is kept.
func KernelFrame(f stack.Frame) string {
	if f.Symbol == "" {
		return frameAddress(f.Address)
	}
	s := addressPrefix(f.Address) + f.Symbol + "+0x" + strconv.FormatUint(f.Offset, 16)
	if f.Module != "" {
		s += " [" + f.Module + "]"
	}
	return s
}

// UserFrame renders a user stack frame as AttrUserStackTrace holds it:
// "symbol+0xoff (file+0xoff)", "(file+0xoff)" without a symbol, after
// "0xaddr: " when the address is kept.
func UserFrame(f stack.Frame) string {
	if f.Module == "" {
		return frameAddress(f.Address)
	}
	s := addressPrefix(f.Address)
	if f.Symbol != "" {
		s += f.Symbol + "+0x" + strconv.FormatUint(f.Offset, 16) + " "
	}
	return s + "(" + f.Module + "+0x" + strconv.FormatUint(f.ModuleOffset, 16) + ")"
}

func addressPrefix(addr uint64) string {
	if addr == 0 {
		return ""
	}
	return "0x" + strconv.FormatUint(addr, 16) + ": "
}

// frameAddress is a frame nothing names: its address, "?" when hidden.
func frameAddress(addr uint64) string {
	if addr == 0 {
		return "?"
	}
	return "0x" + strconv.FormatUint(addr, 16)
}

// Sock is an INET socket argument (type sock): its transport and ends.
type Sock struct {
	Transport           string // "tcp", "udp", ...
	Source, Destination netip.AddrPort
}

// Sock reads a sock argument of an AF_INET or AF_INET6 socket, which the
// kernel package renders as "tcp 10.0.0.5:43122 -> 104.198.14.52:443".
func (a HookArg) Sock() (Sock, bool) {
	if a.Type != "sock" {
		return Sock{}, false
	}
	f := strings.Fields(a.Str)
	if len(f) != 4 || f[2] != "->" {
		return Sock{}, false
	}
	src, err1 := netip.ParseAddrPort(f[1])
	dst, err2 := netip.ParseAddrPort(f[3])
	if err1 != nil || err2 != nil {
		return Sock{}, false
	}
	return Sock{Transport: f[0], Source: src, Destination: dst}, true
}

// Destination is where a socket argument goes: a sockaddr's address and
// port, or a sock's remote end.
func (a HookArg) Destination() (netip.AddrPort, bool) {
	if a.Type == "sockaddr" {
		ap, err := netip.ParseAddrPort(a.Str)
		return ap, err == nil
	}
	sk, ok := a.Sock()
	return sk.Destination, ok
}

// openCalls are the hooks whose string argument is the path being opened.
var openCalls = map[string]bool{"open": true, "openat": true, "openat2": true, "creat": true, "truncate": true, "unlink": true, "unlinkat": true}

// FilePath is the file an event is about: the path behind an fd argument,
// or the path argument of an open-like syscall.
func (h Hook) FilePath() string {
	for _, a := range h.Args {
		switch a.Type {
		case "fd", "file", "path", "kiocb", "linux_binprm":
			return a.Str
		}
	}
	if openCalls[callName(h.Call)] {
		for _, a := range h.Args {
			if a.IsString {
				return a.Str
			}
		}
	}
	return ""
}

// callName is the bare name of a hooked function ("__x64_sys_openat",
// "sys_openat" -> "openat").
func callName(call string) string {
	if i := strings.Index(call, "sys_"); i >= 0 {
		return call[i+len("sys_"):]
	}
	return call
}

func (h Hook) summary() string {
	var b strings.Builder
	// Sized at once: every event builds one.
	n := len(h.Call) + len(h.Process.Binary) + 24
	for _, a := range h.Args {
		n += 21 + len(a.Str)
	}
	b.Grow(n)
	b.WriteString(callName(h.Call))
	b.WriteString(" ")
	b.WriteString(h.Process.Binary)
	for _, a := range h.Args {
		b.WriteString(" ")
		switch {
		case a.IsString:
			b.WriteString(a.Str)
		case a.Names != nil:
			b.WriteString(strings.Join(a.Names, ","))
		default:
			b.WriteString(strconv.FormatInt(a.Int, 10))
		}
	}
	if h.Return {
		b.WriteString(" = ")
		b.WriteString(strconv.FormatInt(h.Ret, 10))
	}
	return b.String()
}
