package event

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func hostResource() pcommon.Map {
	m := pcommon.NewMap()
	m.PutStr(AttrHostName, "node-1")
	return m
}

func k8sResource() pcommon.Map {
	m := pcommon.NewMap()
	m.PutStr(AttrHostName, "node-1")
	m.PutStr(AttrK8sNodeName, "worker-3")
	m.PutStr(AttrK8sNamespace, "default")
	m.PutStr(AttrK8sPodName, "xwing")
	return m
}

// record builds a log record with the given event name, binary and argv
// (argv[0] included, as the receiver sets process.command_args); extra adds
// further attributes.
func record(name, binary string, argv []string, extra func(pcommon.Map)) plog.LogRecord {
	r := plog.NewLogRecord()
	r.SetEventName(name)
	if binary != "" {
		r.Attributes().PutStr(AttrProcessExecutablePath, binary)
	}
	if argv != nil {
		s := r.Attributes().PutEmptySlice(AttrProcessCommandArgs)
		for _, a := range argv {
			s.AppendEmpty().SetStr(a)
		}
	}
	if extra != nil {
		extra(r.Attributes())
	}
	return r
}

func withExitCode(code int64) func(pcommon.Map) {
	return func(m pcommon.Map) { m.PutInt(AttrProcessExitCode, code) }
}

func TestCompact(t *testing.T) {
	curl := []string{"curl", "https://ebpf.io"}
	tests := []struct {
		name     string
		resource pcommon.Map
		record   plog.LogRecord
		color    bool
		want     string
	}{
		{
			name:     "exec on a host",
			resource: hostResource(),
			record:   record(NameProcessExec, "/usr/bin/curl", curl, nil),
			want:     "🚀 process node-1 /usr/bin/curl https://ebpf.io",
		},
		{
			name:     "exec in a pod",
			resource: k8sResource(),
			record:   record(NameProcessExec, "/usr/bin/curl", []string{"curl", "-s", "https://ebpf.io"}, nil),
			want:     "🚀 process default/xwing /usr/bin/curl -s https://ebpf.io",
		},
		{
			name: "node name wins over host name outside a pod",
			resource: func() pcommon.Map {
				m := k8sResource()
				m.Remove(AttrK8sPodName)
				return m
			}(),
			record: record(NameProcessExec, "/usr/bin/curl", curl, nil),
			want:   "🚀 process worker-3 /usr/bin/curl https://ebpf.io",
		},
		{
			name:     "exec without arguments",
			resource: hostResource(),
			record:   record(NameProcessExec, "/usr/bin/ls", []string{"ls"}, nil),
			want:     "🚀 process node-1 /usr/bin/ls",
		},
		{
			name:     "exec without command_args",
			resource: hostResource(),
			record:   record(NameProcessExec, "/usr/bin/ls", nil, nil),
			want:     "🚀 process node-1 /usr/bin/ls",
		},
		{
			name:     "exit with code",
			resource: k8sResource(),
			record:   record(NameProcessExit, "/usr/bin/curl", curl, withExitCode(60)),
			want:     "💥 exit    default/xwing /usr/bin/curl https://ebpf.io 60",
		},
		{
			name:     "exit with code zero and no arguments",
			resource: hostResource(),
			record:   record(NameProcessExit, "/usr/bin/true", []string{"true"}, withExitCode(0)),
			want:     "💥 exit    node-1 /usr/bin/true 0",
		},
		{
			name:     "exit with signal",
			resource: k8sResource(),
			record: record(NameProcessExit, "/usr/bin/sleep", []string{"sleep", "60"}, func(m pcommon.Map) {
				m.PutInt(AttrProcessExitCode, 0)
				m.PutStr(AttrExitSignal, "SIGKILL")
			}),
			want: "💥 exit    default/xwing /usr/bin/sleep 60 SIGKILL",
		},
		{
			name:     "exit with empty signal falls back to code",
			resource: hostResource(),
			record: record(NameProcessExit, "/usr/bin/false", []string{"false"}, func(m pcommon.Map) {
				m.PutInt(AttrProcessExitCode, 1)
				m.PutStr(AttrExitSignal, "")
			}),
			want: "💥 exit    node-1 /usr/bin/false 1",
		},
		{
			name:     "exec in color",
			resource: k8sResource(),
			record:   record(NameProcessExec, "/usr/bin/curl", curl, nil),
			color:    true,
			want: "\x1b[34m🚀 process\x1b[0m default/xwing \x1b[35m/usr/bin/curl\x1b[0m " +
				"\x1b[36mhttps://ebpf.io\x1b[0m",
		},
		{
			name:     "exit in color",
			resource: k8sResource(),
			record:   record(NameProcessExit, "/usr/bin/curl", curl, withExitCode(60)),
			color:    true,
			want: "\x1b[34m💥 exit   \x1b[0m default/xwing \x1b[35m/usr/bin/curl\x1b[0m " +
				"\x1b[36mhttps://ebpf.io\x1b[0m \x1b[31m60\x1b[0m",
		},
		{
			name:     "color without arguments leaves no empty escape",
			resource: hostResource(),
			record:   record(NameProcessExec, "/usr/bin/ls", []string{"ls"}, nil),
			color:    true,
			want:     "\x1b[34m🚀 process\x1b[0m node-1 \x1b[35m/usr/bin/ls\x1b[0m",
		},
		{
			name:     "unknown event falls back to name and body",
			resource: k8sResource(),
			record: func() plog.LogRecord {
				r := record("process.future", "/usr/bin/cat", []string{"cat", "/etc/shadow"}, nil)
				r.Body().SetStr("security_file_permission /etc/shadow")
				return r
			}(),
			want: "❓ process.future default/xwing /usr/bin/cat security_file_permission /etc/shadow",
		},
		{
			name:     "unknown event without binary or body",
			resource: hostResource(),
			record:   record("process.future", "", nil, nil),
			want:     "❓ process.future node-1",
		},
		{
			name:     "control characters in arguments cannot forge a line",
			resource: hostResource(),
			record:   record(NameProcessExec, "/bin/sh", []string{"sh", "-c", "x\n🚀 process node-1 /bin/true\x1b[2J", "\u202e\xff"}, nil),
			want:     `🚀 process node-1 /bin/sh -c x\n🚀 process node-1 /bin/true\x1b[2J \u202e\xff`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compact(tt.resource, tt.record, tt.color)
			if got != tt.want {
				t.Errorf("Compact() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestCompactLoader(t *testing.T) {
	lr := record(NameProcessLoader, "/usr/bin/true", []string{"true"}, func(m pcommon.Map) {
		m.PutStr(AttrHook, "sys_mmap")
		m.PutStr(AttrFilePath, "/lib/x86_64-linux-gnu/libc.so.6")
	})
	if got, want := Compact(hostResource(), lr, false), "📚 loader  node-1 /usr/bin/true /lib/x86_64-linux-gnu/libc.so.6"; got != want {
		t.Errorf("loader:\n got %q\nwant %q", got, want)
	}
}

func TestCompactPolicyEvents(t *testing.T) {
	open := record(NameProcessKprobe, "/usr/bin/cat", []string{"cat", "/etc/shadow"}, func(m pcommon.Map) {
		m.PutStr(AttrHook, "sys_openat")
		m.PutStr(AttrFilePath, "/etc/shadow")
	})
	if got, want := Compact(hostResource(), open, false), "📬 open    node-1 /usr/bin/cat /etc/shadow"; got != want {
		t.Errorf("open:\n got %q\nwant %q", got, want)
	}
	// A policy that is a detection rule (it has a severity) says so.
	open.SetSeverityText("high")
	open.Attributes().PutStr(AttrSecurityRuleName, "credential-access")
	open.Attributes().PutStr(AttrMessage, "Credential file opened")
	if got, want := Compact(hostResource(), open, false), "📬 open    node-1 /usr/bin/cat /etc/shadow ⚠️ high credential-access: Credential file opened"; got != want {
		t.Errorf("rule:\n got %q\nwant %q", got, want)
	}
	other := record(NameProcessKprobe, "/usr/bin/x", []string{"x"}, func(m pcommon.Map) {
		m.PutStr(AttrHook, "sys_kill")
		args := m.PutEmptySlice(AttrArgs)
		a := args.AppendEmpty().SetEmptyMap()
		a.PutInt("value", 42)
		b := args.AppendEmpty().SetEmptyMap()
		b.PutInt("value", 9)
		m.PutInt(AttrReturn, -1)
	})
	if got, want := Compact(k8sResource(), other, false), "⁉️ kill    default/xwing /usr/bin/x 42 9 = -1"; got != want {
		t.Errorf("kill:\n got %q\nwant %q", got, want)
	}
	// A USDT probe as tetra prints one: the binary, provider and name,
	// then the arguments.
	usdt := record(NameProcessUsdt, "/usr/sbin/mysqld", []string{"mysqld"}, func(m pcommon.Map) {
		m.PutStr(AttrHook, "/usr/sbin/mysqld:mysql:query__start")
		m.PutEmptySlice(AttrArgs).AppendEmpty().SetEmptyMap().PutStr("value", "SELECT 1")
	})
	if got, want := Compact(hostResource(), usdt, false), "🕵️ usdt    node-1 /usr/sbin/mysqld /usr/sbin/mysqld mysql query__start SELECT 1"; got != want {
		t.Errorf("usdt:\n got %q\nwant %q", got, want)
	}
}

func TestCompactEnforcementAction(t *testing.T) {
	r := record(NameEnforcementAction, "", nil, func(m pcommon.Map) {
		m.PutStr(AttrTargetBinary, "/usr/bin/nc")
		m.PutStr(AttrEnforcementAction, "kill")
		m.PutStr(AttrEnforcementResult, "skipped")
		m.PutStr(AttrEnforcementReason, "monitor")
		m.PutStr(AttrSecurityRuleName, "no-netcat")
	})
	if got, want := Compact(hostResource(), r, false), "🛑 enforce node-1 /usr/bin/nc kill skipped (monitor) no-netcat"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
