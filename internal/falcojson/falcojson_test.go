package falcojson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/process"
)

var at = time.Date(2026, 12, 6, 16, 31, 56, 746609046, time.UTC)

var cat = &process.Process{ExecID: "bm9kZToxOjQy", PID: 42, PPID: 10, Binary: "/usr/bin/cat",
	Args: []string{"cat", "/etc/shadow"}, Cwd: "/root", CgroupName: "cri-containerd-" + strings.Repeat("ab", 32) + ".scope"}

// detections builds, as the receiver does, a Post and a Sigkill policy
// event, an enforcement audit, and an exec (activity, not an alert).
func detections(t *testing.T) plog.Logs {
	t.Helper()
	b := event.NewBatch(event.Host{Name: "node-1"}, "test", func(ns uint64) time.Time { return at })
	hook := func(policy, action string) event.Hook {
		return event.Hook{Time: at, Process: cat, Name: event.NameProcessKprobe, Policy: policy, Call: "sys_openat",
			Actions: []string{action}, Message: "Sensitive file opened", Tags: []string{"T1003.008", "credential_access"},
			Args: []event.HookArg{{Index: 1, Type: "string", Str: "/etc/shadow", IsString: true}}}
	}
	b.Add(hook("read-shadow", "Post"), cat.CgroupName)
	b.Add(hook("kill-shadow", "Sigkill"), cat.CgroupName)
	b.Add(event.Enforcement{Time: at, Source: "processor", Rule: "kill-sleep", Action: "kill", Signal: "SIGKILL",
		Mode: "enforce", Result: "taken", PID: 42, Binary: "/usr/bin/sleep"}, cat.CgroupName)
	b.Add(event.Exec{Time: at, Process: cat}, cat.CgroupName)
	ld := b.Take()
	res := ld.ResourceLogs().At(0).Resource().Attributes()
	res.PutStr(event.AttrK8sNamespace, "shop")
	res.PutStr(event.AttrK8sPodName, "web-1")
	res.PutStr(event.AttrContainerImageName, "nginx")
	res.PutEmptySlice(event.AttrContainerImageTags).AppendEmpty().SetStr("1.27")
	return ld
}

// The alerts have the fields of Falco's json_output, typed as Falco
// writes them, and the event's values under Falco's field names.
func TestAlertsCarryFalcosFields(t *testing.T) {
	out, skipped, err := Marshal(detections(t))
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 {
		t.Errorf("%d records skipped, want the exec alone", skipped)
	}
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d alerts, want 3:\n%s", len(lines), out)
	}
	var alerts []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		alerts = append(alerts, m)
		for _, k := range []string{"output", "priority", "rule", "time", "output_fields", "source", "tags", "hostname"} {
			if _, ok := m[k]; !ok {
				t.Errorf("alert without %q: %s", k, l)
			}
		}
		if ts, _ := m["time"].(string); ts != "2026-12-06T16:31:56.746609046Z" {
			t.Errorf("time %v, want RFC 3339 with nanoseconds", m["time"])
		}
		if _, ok := m["output_fields"].(map[string]any); !ok {
			t.Errorf("output_fields is %T, want an object", m["output_fields"])
		}
		if _, ok := m["tags"].([]any); !ok {
			t.Errorf("tags is %T, want an array", m["tags"])
		}
		if m["hostname"] != "node-1" || m["source"] != "syscall" {
			t.Errorf("hostname %v source %v", m["hostname"], m["source"])
		}
	}
	post, kill, audit := alerts[0], alerts[1], alerts[2]
	if post["rule"] != "read-shadow" || post["priority"] != PriorityWarning {
		t.Errorf("Post alert: rule %v priority %v, want read-shadow Warning", post["rule"], post["priority"])
	}
	if kill["rule"] != "kill-shadow" || kill["priority"] != PriorityCritical {
		t.Errorf("Sigkill alert: rule %v priority %v, want kill-shadow Critical", kill["rule"], kill["priority"])
	}
	// The audit record has its own severity (WARN for an action taken).
	if audit["rule"] != "kill-sleep" || audit["priority"] != PriorityWarning ||
		audit["output_fields"].(map[string]any)["proc.exepath"] != "/usr/bin/sleep" {
		t.Errorf("enforcement alert: rule %v priority %v fields %v", audit["rule"], audit["priority"], audit["output_fields"])
	}
	fields := post["output_fields"].(map[string]any)
	for k, want := range map[string]any{
		"proc.exepath": "/usr/bin/cat", "proc.cmdline": "cat /etc/shadow", "fd.name": "/etc/shadow",
		"proc.pid": float64(42), "proc.ppid": float64(10), "proc.cwd": "/root", "evt.type": "sys_openat",
		"container.id": strings.Repeat("ab", 32), "k8s.ns.name": "shop", "k8s.pod.name": "web-1",
		"container.image.repository": "nginx", "container.image.tag": "1.27", "evt.time": float64(at.UnixNano()),
	} {
		if fields[k] != want {
			t.Errorf("output_fields[%s] = %v, want %v", k, fields[k], want)
		}
	}
	wantOutput := "16:31:56.746609046: Warning Sensitive file opened (proc.exepath=/usr/bin/cat proc.cmdline=cat /etc/shadow fd.name=/etc/shadow"
	if o, _ := post["output"].(string); !strings.HasPrefix(o, wantOutput) {
		t.Errorf("output %q, want it to start %q", o, wantOutput)
	}
	if tags := post["tags"].([]any); len(tags) != 2 || tags[0] != "T1003.008" || tags[1] != "credential_access" {
		t.Errorf("tags %v", tags)
	}
}

// A record's own severity decides the priority when it has one.
func TestPriorityFollowsTheRecordsSeverity(t *testing.T) {
	for n, want := range map[plog.SeverityNumber]string{
		plog.SeverityNumberFatal: PriorityCritical, plog.SeverityNumberError: PriorityError,
		plog.SeverityNumberWarn: PriorityWarning, plog.SeverityNumberInfo2: PriorityNotice,
		plog.SeverityNumberInfo: PriorityInfo, plog.SeverityNumberDebug: PriorityDebug,
	} {
		lr := plog.NewLogRecord()
		lr.SetSeverityNumber(n)
		lr.Attributes().PutStr(event.AttrAction, "Sigkill")
		if got := Priority(lr); got != want {
			t.Errorf("severity %v: priority %s, want %s", n, got, want)
		}
	}
}
