package event

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// ANSI escapes used by Compact, the same colours tetra's compact encoder
// uses, so a line reads the same in either tool.
const (
	ansiReset   = "\x1b[0m"
	ansiRed     = "\x1b[31m"
	ansiBlue    = "\x1b[34m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
)

// Compact renders one log record as a single human line in the style of
// Tetragon's `tetra getevents -o compact`:
//
//	🚀 process default/xwing /usr/bin/curl https://ebpf.io
//	💥 exit    default/xwing /usr/bin/curl https://ebpf.io 60
//
// resource is the attribute map of the record's Resource; it supplies the
// source (namespace/pod, else the node name, else the host name). Events
// without a dedicated format fall back to
// "❓ <event name> <source> <binary> <body>" so new event kinds still print.
//
// When color is true the event word, binary, arguments and exit status are
// wrapped in ANSI colour escapes; when false the line holds none.
//
// Every value taken from the event is escaped so that it cannot break the
// one-line-per-event framing or drive the reader's terminal: arguments are
// chosen by whoever runs the watched process, and an embedded newline or
// escape sequence would otherwise forge lines or rewrite the screen.
// Non-printable runes appear as Go escapes (\n, \x1b, \u202e). The result
// carries no trailing newline. A policy event with stack traces is the one
// exception to one line: its frames follow on lines of their own, indented
// (stackLines).
func Compact(resource pcommon.Map, record plog.LogRecord, color bool) string {
	p := palette(color)
	attrs := record.Attributes()
	source := compactSource(resource)
	binary := p.paint(ansiMagenta, attrString(attrs, AttrProcessExecutablePath))
	args := p.paint(ansiCyan, compactArgs(attrs))

	switch name := record.EventName(); name {
	case NameProcessExec:
		return joinFields(p.paint(ansiBlue, eventWord("🚀", "process")), source, binary, args)
	case NameProcessExit:
		return joinFields(p.paint(ansiBlue, eventWord("💥", "exit")), source, binary, args,
			p.paint(ansiRed, exitStatus(attrs)))
	case NameProcessKprobe, NameProcessTracepoint, NameProcessUprobe, NameProcessLSM:
		icon, word := hookWord(attrString(attrs, AttrHook))
		return joinFields(p.paint(ansiBlue, eventWord(icon, word)), source, binary,
			p.paint(ansiCyan, hookDetail(attrs)), p.paint(ansiRed, ruleTag(record))) + stackLines(attrs)
	case NameProcessUsdt:
		// As tetra prints a probe: the binary, provider and name.
		hook := attrString(attrs, AttrHook)
		where := strings.Join(strings.Split(hook, ":"), " ")
		return joinFields(p.paint(ansiBlue, eventWord("🕵️", "usdt")), source, binary,
			p.paint(ansiCyan, joinFields(printable(where), hookDetail(attrs)))) + stackLines(attrs)
	case NameProcessLoader:
		// The file whose code was mapped, as tetra prints a loader event.
		return joinFields(p.paint(ansiBlue, eventWord("📚", "loader")), source, binary,
			p.paint(ansiCyan, printable(attrString(attrs, AttrFilePath))))
	case NameEnforcementAction:
		// What was done, to whom, and by which rule, so that an
		// operator watching a node sees enforcement as it happens.
		what := joinFields(attrString(attrs, AttrEnforcementAction), attrString(attrs, AttrEnforcementResult))
		if reason := attrString(attrs, AttrEnforcementReason); reason != "" {
			what += " (" + reason + ")"
		}
		if binary == "" {
			binary = p.paint(ansiMagenta, attrString(attrs, AttrTargetBinary))
		}
		return joinFields(p.paint(ansiBlue, eventWord("🛑", "enforce")), source, binary,
			p.paint(ansiRed, what), attrString(attrs, AttrSecurityRuleName))
	default:
		return joinFields(p.paint(ansiBlue, eventWord("❓", printable(name))), source, binary,
			printable(record.Body().AsString()))
	}
}

// ruleTag names the detection a policy event is, for policies that say
// they are one (a severity): "⚠️ high credential-access: Credential file
// opened". Empty for other policies, whose lines stay tetra's.
func ruleTag(record plog.LogRecord) string {
	sev := record.SeverityText()
	if sev == "" {
		return ""
	}
	attrs := record.Attributes()
	tag := "⚠️ " + printable(sev) + " " + printable(attrString(attrs, AttrSecurityRuleName))
	if msg := attrString(attrs, AttrMessage); msg != "" {
		tag += ": " + printable(msg)
	}
	return tag
}

// hookWords are tetra's words for the hooks it knows, by bare call name.
var hookWords = map[string][2]string{
	"open": {"📬", "open"}, "openat": {"📬", "open"}, "openat2": {"📬", "open"}, "fd_install": {"📬", "open"},
	"security_file_open": {"📬", "open"}, "file_open": {"📬", "open"},
	"write": {"📝", "write"}, "pwrite64": {"📝", "write"}, "writev": {"📝", "write"},
	"read": {"📚", "read"}, "pread64": {"📚", "read"}, "readv": {"📚", "read"},
	"close":  {"📪", "close"},
	"mount":  {"💾", "mount"},
	"setuid": {"🔑", "setuid"}, "setgid": {"🔑", "setgid"}, "setreuid": {"🔑", "setuid"}, "setresuid": {"🔑", "setuid"},
	"connect": {"🔌", "connect"}, "tcp_connect": {"🔌", "connect"},
	"tcp_close": {"🧹", "close"}, "tcp_sendmsg": {"📤", "sendmsg"},
	"unlink": {"🗑️", "unlink"}, "unlinkat": {"🗑️", "unlink"},
}

// hookWord names a policy event by its hooked function; unknown functions
// print as "⁉️ <function>", as tetra does.
func hookWord(call string) (icon, word string) {
	name := call
	if i := strings.Index(name, "sys_"); i >= 0 {
		name = name[i+len("sys_"):]
	}
	if w, ok := hookWords[name]; ok {
		return w[0], w[1]
	}
	return "⁉️", printable(name)
}

// hookDetail is what a policy event is about: its file when it has one,
// else its arguments; the return value follows when it was reported.
func hookDetail(attrs pcommon.Map) string {
	var parts []string
	if path := attrString(attrs, AttrFilePath); path != "" {
		parts = append(parts, path)
	} else if src := attrString(attrs, AttrSourceAddress); src != "" {
		// A socket, as tetra prints one: "tcp 10.0.0.5:43122 -> 104.198.14.52:443".
		parts = append(parts, attrString(attrs, AttrNetworkTransport),
			net.JoinHostPort(src, attrString(attrs, AttrSourcePort)), "->",
			net.JoinHostPort(attrString(attrs, AttrDestinationAddress), attrString(attrs, AttrDestinationPort)))
	} else if addr := attrString(attrs, AttrDestinationAddress); addr != "" {
		parts = append(parts, net.JoinHostPort(addr, attrString(attrs, AttrDestinationPort)))
	} else if v, ok := attrs.Get(AttrArgs); ok && v.Type() == pcommon.ValueTypeSlice {
		for _, a := range v.Slice().All() {
			if a.Type() != pcommon.ValueTypeMap {
				continue
			}
			if val, ok := a.Map().Get("value"); ok {
				parts = append(parts, printable(val.AsString()))
			}
		}
	}
	if ret, ok := attrs.Get(AttrReturn); ok {
		parts = append(parts, "= "+ret.AsString())
	}
	return strings.Join(parts, " ")
}

// stackLines are the stack traces of an event, after its line, as tetra
// prints them: a "Kernel:" and a "User space:" heading, then one frame per
// line indented by three spaces, so that a reader (or grep) tells them from
// event lines. It is "" for an event without stacks.
func stackLines(attrs pcommon.Map) string {
	var b strings.Builder
	for _, st := range []struct{ key, heading string }{
		{AttrKernelStackTrace, "Kernel:"}, {AttrUserStackTrace, "User space:"},
	} {
		v, ok := attrs.Get(st.key)
		if !ok || v.Type() != pcommon.ValueTypeSlice || v.Slice().Len() == 0 {
			continue
		}
		b.WriteString("\n" + st.heading)
		for _, f := range v.Slice().All() {
			b.WriteString("\n   " + printable(f.AsString()))
		}
	}
	return b.String()
}

// eventWord pads the event word to tetra's column width ("🚀 %-7s") so the
// sources of consecutive lines start in the same column.
func eventWord(icon, word string) string {
	return fmt.Sprintf("%s %-7s", icon, word)
}

// compactSource names where the event happened: the pod when the record
// was enriched with one, otherwise the node (which, in a cluster, is what an
// operator searches by), otherwise the host.
func compactSource(resource pcommon.Map) string {
	ns := attrString(resource, AttrK8sNamespace)
	pod := attrString(resource, AttrK8sPodName)
	if ns != "" && pod != "" {
		return ns + "/" + pod
	}
	if node := attrString(resource, AttrK8sNodeName); node != "" {
		return node
	}
	return attrString(resource, AttrHostName)
}

// compactArgs returns the arguments without argv[0], as tetra prints them:
// the binary is already on the line, and argv[0] only repeats it.
func compactArgs(attrs pcommon.Map) string {
	v, ok := attrs.Get(AttrProcessCommandArgs)
	if !ok || v.Type() != pcommon.ValueTypeSlice || v.Slice().Len() < 2 {
		return ""
	}
	s := v.Slice()
	args := make([]string, 0, s.Len()-1)
	for i := 1; i < s.Len(); i++ {
		args = append(args, printable(s.At(i).AsString()))
	}
	return strings.Join(args, " ")
}

// exitStatus prefers the killing signal over the exit code: a process
// killed by SIGKILL has no meaningful code, and the signal is what an
// operator (or an enforcement rule) cares about.
func exitStatus(attrs pcommon.Map) string {
	if sig := attrString(attrs, AttrExitSignal); sig != "" {
		return sig
	}
	return attrString(attrs, AttrProcessExitCode)
}

// attrString returns the attribute as escaped printable text, or "" when it
// is absent.
func attrString(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return printable(v.AsString())
}

// joinFields joins the non-empty fields with single spaces, so a missing
// part (no arguments, no binary) leaves no double or trailing space.
// Fields are empty only when their uncoloured value is, because palette
// does not wrap empty strings.
func joinFields(fields ...string) string {
	var b strings.Builder
	for _, f := range fields {
		if f == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f)
	}
	return b.String()
}

// palette colours text when true and is the identity when false.
type palette bool

// paint wraps s in the given ANSI colour. Empty strings stay empty so that
// joinFields can still drop them.
func (p palette) paint(code, s string) string {
	if !p || s == "" {
		return s
	}
	return code + s + ansiReset
}

// printable escapes every rune strconv.Quote would escape (control
// characters, bidi overrides and other non-printing runes) and every byte
// that is not valid UTF-8, leaving the rest as is. It returns s itself when
// nothing needs escaping, which is the common case.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !strconv.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
