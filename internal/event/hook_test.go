package event

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/process"
	"github.com/vigilsec/vigil/internal/stack"
)

func connectEvent(sock string) Hook {
	return Hook{
		Time:    time.Unix(1700000000, 0),
		Process: &process.Process{PID: 42, Binary: "/usr/bin/curl", Args: []string{"curl", "https://ebpf.io"}, ExecID: "eA=="},
		Name:    NameProcessKprobe, Policy: "connect", Call: "tcp_connect", Actions: []string{"Post"},
		Args: []HookArg{{Index: 0, Type: "sock", Str: sock, IsString: true}},
	}
}

func fillRecord(h Hook) plog.LogRecord {
	lr := plog.NewLogRecord()
	h.fill(lr, newProcessAttrs(func(uint64) time.Time { return time.Unix(0, 0) }))
	return lr
}

// TestHookSockAttributes: a sock argument gives the event its transport
// and both ends, under the semantic-convention names, and the compact line
// reads as tetra's.
func TestHookSockAttributes(t *testing.T) {
	lr := fillRecord(connectEvent("tcp 10.0.0.5:43122 -> 104.198.14.52:443"))
	attrs := lr.Attributes()
	for key, want := range map[string]any{
		AttrNetworkTransport:   "tcp",
		AttrSourceAddress:      "10.0.0.5",
		AttrSourcePort:         int64(43122),
		AttrDestinationAddress: "104.198.14.52",
		AttrDestinationPort:    int64(443),
	} {
		v, ok := attrs.Get(key)
		if !ok {
			t.Errorf("%s missing", key)
			continue
		}
		if got := v.AsRaw(); got != want {
			t.Errorf("%s = %v (%T), want %v", key, got, got, want)
		}
	}
	if got, want := lr.Body().AsString(), "tcp_connect /usr/bin/curl tcp 10.0.0.5:43122 -> 104.198.14.52:443"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if got, want := Compact(k8sResource(), lr, false), "🔌 connect default/xwing /usr/bin/curl tcp 10.0.0.5:43122 -> 104.198.14.52:443"; got != want {
		t.Errorf("compact:\n got %q\nwant %q", got, want)
	}

	v6 := fillRecord(connectEvent("tcp [fd00::5]:43122 -> [2001:db8::1]:443"))
	if got, want := Compact(hostResource(), v6, false), "🔌 connect node-1 /usr/bin/curl tcp [fd00::5]:43122 -> [2001:db8::1]:443"; got != want {
		t.Errorf("compact IPv6:\n got %q\nwant %q", got, want)
	}
}

// TestHookSockOfAnotherFamily: a socket that is not INET has no ends to
// report; the event keeps the argument's text only.
func TestHookSockOfAnotherFamily(t *testing.T) {
	lr := fillRecord(connectEvent("family 1 protocol 0"))
	for _, key := range []string{AttrNetworkTransport, AttrSourceAddress, AttrDestinationAddress} {
		if _, ok := lr.Attributes().Get(key); ok {
			t.Errorf("%s set for an AF_UNIX socket", key)
		}
	}
	args, _ := lr.Attributes().Get(AttrArgs)
	if v, _ := args.Slice().At(0).Map().Get("value"); v.Str() != "family 1 protocol 0" {
		t.Errorf("argument value %q", v.Str())
	}
}

// TestHookReadsTheKernelSockText pins the text a kernel.Sock renders to,
// which is how a sock reaches this package, against what Sock reads back.
func TestHookReadsTheKernelSockText(t *testing.T) {
	for _, ks := range []kernel.Sock{
		{Family: 2, Protocol: 6, State: 2,
			Source: netip.MustParseAddrPort("127.0.0.1:40000"), Destination: netip.MustParseAddrPort("127.0.0.2:8080")},
		{Family: 10, Protocol: 17,
			Source: netip.MustParseAddrPort("[::1]:5353"), Destination: netip.MustParseAddrPort("[::ffff:10.0.0.1]:53")},
	} {
		a := HookArg{Type: "sock", Str: ks.String(), IsString: true}
		got, ok := a.Sock()
		if !ok || got.Transport != ks.Transport() || got.Source != ks.Source || got.Destination != ks.Destination {
			t.Errorf("%q read as %+v, %v; want %+v", ks.String(), got, ok, ks)
		}
		if dst, ok := a.Destination(); !ok || dst != ks.Destination {
			t.Errorf("%q: destination %v", ks.String(), dst)
		}
	}
	if _, ok := (HookArg{Type: "sock", Str: kernel.Sock{Family: 1}.String()}).Sock(); ok {
		t.Error("an AF_UNIX socket read as INET")
	}
}

// TestHookSockaddrDestination: a sockaddr argument still sets the
// destination alone.
func TestHookSockaddrDestination(t *testing.T) {
	h := connectEvent("")
	h.Call = "sys_connect"
	h.Args = []HookArg{{Index: 1, Type: "sockaddr", Str: "127.0.0.2:8080", IsString: true}}
	lr := fillRecord(h)
	if _, ok := lr.Attributes().Get(AttrSourceAddress); ok {
		t.Error("source.address set from a sockaddr")
	}
	if got, want := Compact(hostResource(), lr, false), "🔌 connect node-1 /usr/bin/curl 127.0.0.2:8080"; got != want {
		t.Errorf("compact %q, want %q", got, want)
	}

	// An IPv6 sockaddr, as the kernel package renders it.
	ks := kernel.Sock{Family: 10, Source: netip.MustParseAddrPort("[fd00::1]:443")}
	h.Args = []HookArg{{Index: 1, Type: "sockaddr", Str: ks.SockaddrString(), IsString: true}}
	lr = fillRecord(h)
	for key, want := range map[string]any{AttrDestinationAddress: "fd00::1", AttrDestinationPort: int64(443)} {
		if v, ok := lr.Attributes().Get(key); !ok || v.AsRaw() != want {
			t.Errorf("IPv6 sockaddr: %s = %v, want %v", key, v.AsRaw(), want)
		}
	}
	if got, want := Compact(hostResource(), lr, false), "🔌 connect node-1 /usr/bin/curl [fd00::1]:443"; got != want {
		t.Errorf("compact IPv6 %q, want %q", got, want)
	}
	// A sockaddr of another family has no destination.
	h.Args = []HookArg{{Index: 1, Type: "sockaddr", Str: kernel.Sock{Family: 1}.SockaddrString(), IsString: true}}
	if _, ok := fillRecord(h).Attributes().Get(AttrDestinationAddress); ok {
		t.Error("destination.address set from an AF_UNIX sockaddr")
	}
}

func openEvent() Hook {
	return Hook{
		Time:    time.Unix(1700000000, 0),
		Process: &process.Process{PID: 42, Binary: "/usr/bin/cat", Args: []string{"cat", "/etc/passwd"}, ExecID: "eA=="},
		Name:    NameProcessKprobe, Policy: "stacks", Call: "sys_openat", Actions: []string{"Post"},
		Args: []HookArg{{Index: 1, Type: "string", Str: "/etc/passwd", IsString: true}},
	}
}

func stringSlice(t *testing.T, lr plog.LogRecord, key string) []string {
	t.Helper()
	v, ok := lr.Attributes().Get(key)
	if !ok {
		return nil
	}
	var out []string
	for _, s := range v.Slice().All() {
		out = append(out, s.Str())
	}
	return out
}

// TestHookStackTraces: the stacks are string slices of frames, innermost
// first, with addresses only where kept; the compact output prints them
// under the line, as tetra does.
func TestHookStackTraces(t *testing.T) {
	h := openEvent()
	h.KernelStack = []stack.Frame{
		{Symbol: "do_syscall_64", Offset: 0x82},
		{Address: 0xffffffffc0a01044, Symbol: "nft_do_chain", Offset: 0x44, Module: "nf_tables"},
		{Address: 0xffffffff81000130},
		{},
	}
	h.UserStack = []stack.Frame{
		{Symbol: "__open", Offset: 0x51, Module: "/usr/lib/x86_64-linux-gnu/libc.so.6", ModuleOffset: 0xf8011},
		{Address: 0x55d0c0a01b4d, Module: "/usr/bin/cat", ModuleOffset: 0x2b4d},
		{Address: 0x7f0012345678},
		{Module: "/tmp/evil\x1b[2J", ModuleOffset: 1},
	}
	lr := fillRecord(h)
	wantKernel := []string{"do_syscall_64+0x82", "0xffffffffc0a01044: nft_do_chain+0x44 [nf_tables]", "0xffffffff81000130", "?"}
	if got := stringSlice(t, lr, AttrKernelStackTrace); !slices.Equal(got, wantKernel) {
		t.Errorf("%s = %q, want %q", AttrKernelStackTrace, got, wantKernel)
	}
	wantUser := []string{
		"__open+0x51 (/usr/lib/x86_64-linux-gnu/libc.so.6+0xf8011)",
		"0x55d0c0a01b4d: (/usr/bin/cat+0x2b4d)",
		"0x7f0012345678",
		"(/tmp/evil\x1b[2J+0x1)",
	}
	if got := stringSlice(t, lr, AttrUserStackTrace); !slices.Equal(got, wantUser) {
		t.Errorf("%s = %q, want %q", AttrUserStackTrace, got, wantUser)
	}
	want := `📬 open    node-1 /usr/bin/cat /etc/passwd
Kernel:
   do_syscall_64+0x82
   0xffffffffc0a01044: nft_do_chain+0x44 [nf_tables]
   0xffffffff81000130
   ?
User space:
   __open+0x51 (/usr/lib/x86_64-linux-gnu/libc.so.6+0xf8011)
   0x55d0c0a01b4d: (/usr/bin/cat+0x2b4d)
   0x7f0012345678
   (/tmp/evil\x1b[2J+0x1)`
	if got := Compact(hostResource(), lr, false); got != want {
		t.Errorf("compact:\n%s\nwant:\n%s", got, want)
	}

	// Without stacks, neither attribute nor compact lines.
	plain := fillRecord(openEvent())
	for _, key := range []string{AttrKernelStackTrace, AttrUserStackTrace} {
		if _, ok := plain.Attributes().Get(key); ok {
			t.Errorf("%s set on an event without stacks", key)
		}
	}
	if got := Compact(hostResource(), plain, false); strings.Contains(got, "\n") {
		t.Errorf("compact of an event without stacks spans lines: %q", got)
	}
}

// TestHookCapabilityNames: capability arguments keep their integer value
// and carry their names, which the body shows instead of the number.
func TestHookCapabilityNames(t *testing.T) {
	h := Hook{
		Time:    time.Unix(1700000000, 0),
		Process: &process.Process{PID: 42, Binary: "/usr/bin/capsh"},
		Name:    NameProcessKprobe, Policy: "caps", Call: "security_capset", Actions: []string{"Post"},
		Args: []HookArg{{Index: 2, Type: "cap_effective", Int: 1<<0 | 1<<21, Names: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}}},
	}
	lr := fillRecord(h)
	args, _ := lr.Attributes().Get(AttrArgs)
	arg := args.Slice().At(0).Map().AsRaw()
	if arg["value"] != int64(1<<0|1<<21) {
		t.Errorf("value %v", arg["value"])
	}
	if names, ok := arg["names"].([]any); !ok || len(names) != 2 || names[0] != "CAP_CHOWN" || names[1] != "CAP_SYS_ADMIN" {
		t.Errorf("names %v", arg["names"])
	}
	if got, want := lr.Body().AsString(), "security_capset /usr/bin/capsh CAP_CHOWN,CAP_SYS_ADMIN"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

// Data entries are reported apart from the arguments, under vigil.data,
// each with its source.
func TestHookDataEntries(t *testing.T) {
	h := Hook{
		Time:    time.Unix(1700000000, 0),
		Process: &process.Process{PID: 42, Binary: "/usr/bin/head"},
		Name:    NameProcessKprobe, Policy: "data", Call: "sys_openat", Actions: []string{"Post"},
		Args: []HookArg{
			{Index: 1, Type: "string", Str: "/etc/passwd", IsString: true},
			{Type: "string", Str: "head", IsString: true, Source: "current_task"},
		},
	}
	attrs := fillRecord(h).Attributes()
	args, _ := attrs.Get(AttrArgs)
	data, ok := attrs.Get(AttrData)
	if args.Slice().Len() != 1 || !ok || data.Slice().Len() != 1 {
		t.Fatalf("args %v, data %v: want one of each", args.AsRaw(), data.AsRaw())
	}
	if got := data.Slice().At(0).Map().AsRaw(); got["source"] != "current_task" || got["value"] != "head" {
		t.Errorf("data entry %v", got)
	}
	if _, ok := fillRecord(connectEvent("x")).Attributes().Get(AttrData); ok {
		t.Error("vigil.data set on an event without data")
	}
}
