package enforcementprocessor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/testenv"
)

// TestKillMatchesCommandLineAndParent runs the receiver -> enforcement ->
// sink pipeline: a rule on the command line and the parent's binary kills
// the process through its pidfd, and the audit record says so.
func TestKillMatchesCommandLineAndParent(t *testing.T) {
	marker := "3600." + unique()
	sink := startPipeline(t, testConfig("", RuleConfig{
		Name: "kill-sleep-under-bash", Action: ActionKill,
		Condition: fmt.Sprintf(`event_name == "process.exec" and attributes["process.command_line"] == "/usr/bin/sleep %s"`+
			` and attributes["vigil.parent.executable.path"] == "/usr/bin/bash"`, marker),
	}))
	// The same command line under another parent is not matched.
	_, _, other := startSleep(t, marker)

	cmd := exec.Command("/usr/bin/bash", "-c", "/usr/bin/sleep "+marker+"; echo status=$?")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := make(chan string, 1)
	go func() { b, _ := cmd.Output(); out <- string(b) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	select {
	case got := <-out:
		if got != "status=137\n" {
			t.Fatalf("bash says %q, want the sleep killed (status=137)", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the matching process was not killed within 10s")
	}
	execs := waitRecords(t, sink, "process.exec", 2, execOf("/usr/bin/sleep "+marker))
	var under *record
	for i, ex := range execs {
		if ex.str(event.AttrParentExecutablePath) == "/usr/bin/bash" {
			under = &execs[i]
		}
	}
	if under == nil {
		t.Fatal("no exec event of the sleep under bash")
	}
	a := waitRecords(t, sink, "enforcement.action", 1, audits("kill-sleep-under-bash"))
	passMarker(t, sink)
	if a = records(sink, audits("kill-sleep-under-bash")); len(a) != 1 {
		t.Fatalf("%d audit records, want 1", len(a))
	}
	for k, want := range map[string]string{
		event.AttrEnforcementAction: "kill", event.AttrEnforcementSignal: "SIGKILL",
		event.AttrEnforcementMode: "enforce", event.AttrEnforcementResult: "taken",
		event.AttrEnforcementReason: "rule_matched", event.AttrEnforcementSource: "processor",
		event.AttrTargetBinary: "/usr/bin/sleep", event.AttrExecID: under.str(event.AttrExecID),
		event.AttrTargetExecID: under.str(event.AttrExecID),
	} {
		if got := a[0].str(k); got != want {
			t.Errorf("audit %s = %q, want %q", k, got, want)
		}
	}
	if a[0].int(event.AttrTargetPID) != under.int(event.AttrProcessPID) {
		t.Errorf("audit target pid %d, the sleep was %d", a[0].int(event.AttrTargetPID), under.int(event.AttrProcessPID))
	}
	if v, _ := a[0].resource.Get(event.AttrHostName); v.Str() == "" {
		t.Error("the audit record has not the event's resource")
	}
	select {
	case <-other:
		t.Error("the sleep under another parent was killed")
	default:
	}
	t.Logf("audit record: %s %v", a[0].lr.Body().Str(), a[0].lr.Attributes().AsRaw())
}

// TestReusedPIDIsNotSignalled: an event whose start time is not that of
// the process now holding its pid leaves that process alone; the same
// event with the right start time kills it, so the start time is what
// decided.
func TestReusedPIDIsNotSignalled(t *testing.T) {
	marker := "3600." + unique()
	p, sink := newTestProcessor(t, testConfig("", RuleConfig{
		Name: "kill-sleep", Action: ActionKill, Condition: `attributes["process.command_line"] == "/usr/bin/sleep ` + marker + `"`,
	}))
	cmd, status, done := startSleep(t, marker)
	pid := cmd.Process.Pid
	start := startBootNs(t, pid)

	// The event of an earlier process that had the same pid.
	if err := p.ConsumeLogs(context.Background(), processRecord(pid, start-5e9, "/usr/bin/sleep "+marker)); err != nil {
		t.Fatal(err)
	}
	a := records(sink, audits("kill-sleep"))
	if len(a) != 1 || a[0].str(event.AttrEnforcementResult) != "skipped" || a[0].str(event.AttrEnforcementReason) != "pid_reused" {
		t.Fatalf("audit %v, want skipped pid_reused", a)
	}
	if signalled(t, pid) {
		t.Fatal("a process with another start time was signalled")
	}

	if err := p.ConsumeLogs(context.Background(), processRecord(pid, start, "/usr/bin/sleep "+marker)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if !status.Signaled() || status.Signal() != syscall.SIGKILL {
			t.Errorf("the process ended with %v", *status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the event with the right start time did not kill")
	}

	// Once gone, the pid is reported as such.
	if err := p.ConsumeLogs(context.Background(), processRecord(pid, start, "/usr/bin/sleep "+marker)); err != nil {
		t.Fatal(err)
	}
	if a = records(sink, audits("kill-sleep")); len(a) != 3 || a[2].str(event.AttrEnforcementReason) != "pid_gone" {
		t.Errorf("audit after exit: %v", a[len(a)-1].lr.Attributes().AsRaw())
	}
}

// TestMonitorModeKillsNothing: the same rule in monitor mode only audits.
func TestMonitorModeKillsNothing(t *testing.T) {
	marker := "3600." + unique()
	cfg := testConfig("", RuleConfig{
		Name: "kill-sleep", Action: ActionKill,
		Condition: `event_name == "process.exec" and attributes["process.command_line"] == "/usr/bin/sleep ` + marker + `"`,
	})
	cfg.Mode = ModeMonitor
	sink := startPipeline(t, cfg)
	cmd, _, _ := startSleep(t, marker)
	a := waitRecords(t, sink, "enforcement.action", 1, audits("kill-sleep"))
	if a[0].str(event.AttrEnforcementMode) != "monitor" || a[0].str(event.AttrEnforcementResult) != "skipped" ||
		a[0].str(event.AttrEnforcementReason) != "monitor" || a[0].int(event.AttrTargetPID) != int64(cmd.Process.Pid) {
		t.Errorf("audit %v", a[0].lr.Attributes().AsRaw())
	}
	passMarker(t, sink)
	if signalled(t, cmd.Process.Pid) {
		t.Fatal("monitor mode killed the process")
	}
}

// TestRateLimitBoundsABurst: five matching processes, a limit of two: two
// are killed, three audited as rate limited and left running.
func TestRateLimitBoundsABurst(t *testing.T) {
	marker := "3600." + unique()
	sink := startPipeline(t, testConfig("", RuleConfig{
		Name: "kill-limited", Action: ActionKill, RateLimit: "2/1m",
		Condition: `event_name == "process.exec" and attributes["process.command_line"] == "/usr/bin/sleep ` + marker + `"`,
	}))
	var pids []int
	for range 5 {
		cmd, _, _ := startSleep(t, marker)
		pids = append(pids, cmd.Process.Pid)
	}
	a := waitRecords(t, sink, "enforcement.action", 5, audits("kill-limited"))
	results := map[string]int{}
	for _, r := range a {
		results[r.str(event.AttrEnforcementResult)+"/"+r.str(event.AttrEnforcementReason)]++
	}
	if len(a) != 5 || results["taken/rule_matched"] != 2 || results["skipped/rate_limited"] != 3 {
		t.Fatalf("audit results %v, want 2 taken and 3 rate limited", results)
	}
	killed := 0
	for _, pid := range pids {
		if signalled(t, pid) {
			killed++
		}
	}
	if killed != 2 {
		t.Errorf("%d processes killed, want 2", killed)
	}
}

// TestDenyExecKillsLaterExecs: after the rule fires, a new exec of the
// binary is killed at exec; removing the entry lets it run.
func TestDenyExecKillsLaterExecs(t *testing.T) {
	pin, _ := denySensor(t)
	// A copy of printenv of the test's own, so that no other process on
	// the machine is denied.
	bin := filepath.Join(t.TempDir(), "printenv-"+unique())
	data, err := os.ReadFile("/usr/bin/printenv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sink := startPipeline(t, testConfig(pin, RuleConfig{
		Name: "deny-printenv", Action: ActionDenyExec, TTL: time.Hour,
		Condition: `event_name == "process.exec" and attributes["process.command_line"] == "` + bin + ` TRIGGER"`,
	}))
	if out, err := exec.Command(bin, "TRIGGER").CombinedOutput(); err == nil || len(out) != 0 {
		// printenv of an unset variable exits 1 and prints nothing.
		t.Logf("trigger: %v %q", err, out)
	}
	a := waitRecords(t, sink, "enforcement.action", 1, audits("deny-printenv"))
	if a[0].str(event.AttrEnforcementResult) != "taken" || a[0].str(event.AttrTargetBinary) != bin ||
		a[0].str(event.AttrEnforcementRuleID) != event.RuleIDString(ruleID("deny-printenv")) || a[0].str(event.AttrEnforcementExpires) == "" {
		t.Fatalf("audit %v", a[0].lr.Attributes().AsRaw())
	}
	t.Logf("audit record: %s %v", a[0].lr.Body().Str(), a[0].lr.Attributes().AsRaw())

	cmd := exec.Command(bin, "HOME")
	out, err := cmd.Output()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || len(out) != 0 {
		t.Fatalf("the denied binary ran: %v, output %q", err, out)
	}

	d, err := kernel.OpenDenyLists(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	list, err := d.List()
	if err != nil || len(list) != 1 || list[0].Binary != bin || list[0].Rule != ruleID("deny-printenv") {
		t.Fatalf("deny list %+v, %v", list, err)
	}
	if left := time.Until(list[0].Expires); left < 59*time.Minute || left > time.Hour {
		t.Errorf("the entry expires in %s, want the ttl of 1h", left)
	}
	if err := d.Remove(list[0]); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "HOME").Output(); err != nil || len(out) == 0 {
		t.Errorf("after removal: %v %q", err, out)
	}
}

// TestDenyConnectFromTheContainer: after the rule fires on a process in a
// cgroup, connects from that cgroup to 127.0.0.2:port get EPERM; 127.0.0.1
// and other cgroups are unaffected.
func TestDenyConnectFromTheContainer(t *testing.T) {
	pin, s := denySensor(t)
	if err := s.EnableConnectDeny(); err != nil {
		t.Fatal(err)
	}
	root, err := kernel.Cgroup2Mount()
	if err != nil {
		testenv.Unavailable(t, "no cgroup v2 hierarchy: %v", err)
	}
	cg := filepath.Join(root, "vigil-test-"+unique())
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	dir, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(dir.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	// inContainer runs a command in the cgroup from its first instruction.
	inContainer := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
		return cmd
	}

	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	marker := unique()
	sink := startPipeline(t, testConfig(pin, RuleConfig{
		Name: "cut-off", Action: ActionDenyConnect, Destination: "127.0.0.2", Port: port, Scope: ScopeContainer, TTL: time.Hour,
		Condition: `event_name == "process.exec" and attributes["process.command_line"] == "/usr/bin/true ` + marker + `"`,
	}))
	connect := func(addr string) (string, error) {
		cmd := inContainer("/usr/bin/bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr, port))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := connect("127.0.0.2"); err != nil {
		t.Fatalf("before the rule fired: %v %s", err, out)
	}
	if err := inContainer("/usr/bin/true", marker).Run(); err != nil {
		t.Fatal(err)
	}
	a := waitRecords(t, sink, "enforcement.action", 1, audits("cut-off"))
	if a[0].str(event.AttrEnforcementResult) != "taken" || a[0].int(event.AttrTargetCgroupID) != int64(st.Ino) ||
		a[0].str(event.AttrTargetDestination) != "127.0.0.2/32 port "+strconv.Itoa(port) {
		t.Fatalf("audit %v (cgroup %d)", a[0].lr.Attributes().AsRaw(), st.Ino)
	}
	t.Logf("audit record: %s %v", a[0].lr.Body().Str(), a[0].lr.Attributes().AsRaw())

	if out, err := connect("127.0.0.2"); err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("connect from the cgroup to 127.0.0.2: %v %q, want EPERM", err, out)
	}
	if out, err := connect("127.0.0.1"); err != nil {
		t.Errorf("connect from the cgroup to 127.0.0.1: %v %s", err, out)
	}
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Errorf("connect from outside the cgroup: %v", err)
	} else {
		c.Close()
	}

	d, err := kernel.OpenDenyLists(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := kernel.DenyEntry{Kind: kernel.DenyConnect, Prefix: netip.MustParsePrefix("127.0.0.2/32"), Port: uint16(port), Cgroup: st.Ino}
	if err := d.Remove(want); err != nil {
		t.Fatal(err)
	}
	if out, err := connect("127.0.0.2"); err != nil {
		t.Errorf("after removal: %v %s", err, out)
	}
}

// TestDenyConnectTakesTheEventsDestination: without a configured
// destination the entry is the event's destination.address and port.
func TestDenyConnectTakesTheEventsDestination(t *testing.T) {
	r, err := RuleConfig{Name: "r", Condition: "true", Action: ActionDenyConnect}.compile(nopTelemetry())
	if err != nil {
		t.Fatal(err)
	}
	attrs := plog.NewLogRecord().Attributes()
	if _, err := r.connectEntry(attrs); err == nil {
		t.Error("an event without a destination gave an entry")
	}
	attrs.PutStr(event.AttrDestinationAddress, "10.1.2.3")
	attrs.PutInt(event.AttrDestinationPort, 443)
	e, err := r.connectEntry(attrs)
	if err != nil || e.Prefix != netip.MustParsePrefix("10.1.2.3/32") || e.Port != 443 || e.Cgroup != 0 {
		t.Errorf("entry %+v, %v", e, err)
	}
}

// actionCounts reads otelcol_processor_enforcement_actions by
// rule/action/result.
func actionCounts(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "otelcol_processor_enforcement_actions" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				rule, _ := dp.Attributes.Value("rule")
				action, _ := dp.Attributes.Value("action")
				result, _ := dp.Attributes.Value("result")
				counts[rule.AsString()+"/"+action.AsString()+"/"+result.AsString()] = dp.Value
			}
		}
	}
	return counts
}

// TestEveryRuleHasASeriesFromTheStart: once started, each rule's series is
// there at zero, with the result its mode gives, before any record.
func TestEveryRuleHasASeriesFromTheStart(t *testing.T) {
	cfg := testConfig("",
		RuleConfig{Name: "kill-it", Action: ActionKill, Condition: `attributes["process.command_line"] == "x"`},
		RuleConfig{Name: "watch-it", Action: ActionDenyExec, Mode: ModeMonitor, Condition: `attributes["process.command_line"] == "y"`},
	)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	set := processortest.NewNopSettings(typ)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, new(consumertest.LogsSink))
	if err != nil {
		t.Fatal(err)
	}
	if got := actionCounts(t, reader); len(got) != 0 {
		t.Fatalf("series before Start: %v", got)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	got := actionCounts(t, reader)
	want := map[string]int64{"kill-it/kill/taken": 0, "watch-it/deny_exec/skipped": 0}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if n, ok := got[k]; !ok || n != v {
			t.Fatalf("series %v, want %v", got, want)
		}
	}
}

// TestDropRemovesTheRecord: a drop rule takes the record out of the batch;
// the other records and the audit record continue; the metric counts it.
func TestDropRemovesTheRecord(t *testing.T) {
	cfg := testConfig("",
		RuleConfig{Name: "drop-noise", Action: ActionDrop, Condition: `attributes["process.command_line"] == "noise"`},
		RuleConfig{Name: "drop-quietly", Action: ActionDrop, Condition: `attributes["process.command_line"] == "hush"`, Audit: new(bool)},
	)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	set := processortest.NewNopSettings(typ)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())

	ld := processRecord(100, 1, "noise")
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	recs.AppendEmpty().Attributes().PutStr(event.AttrProcessCommandLine, "signal")
	recs.AppendEmpty().Attributes().PutStr(event.AttrProcessCommandLine, "hush")
	if err := p.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	all := records(sink, func(record) bool { return true })
	if len(all) != 2 || all[0].str(event.AttrProcessCommandLine) != "signal" || all[1].lr.EventName() != event.NameEnforcementAction ||
		all[1].str(event.AttrEnforcementResult) != "taken" || all[1].str(event.AttrEnforcementAction) != "drop" {
		for _, r := range all {
			t.Log(r.lr.EventName(), r.lr.Attributes().AsRaw())
		}
		t.Fatalf("%d records, want the kept one and one audit record", len(all))
	}

	// A batch of nothing but dropped records does not go on.
	if err := p.ConsumeLogs(context.Background(), processRecord(100, 1, "hush")); err != nil {
		t.Fatal(err)
	}
	if len(sink.AllLogs()) != 1 {
		t.Errorf("an empty batch was passed on")
	}

	counts := actionCounts(t, reader)
	if counts["drop-noise/drop/taken"] != 1 || counts["drop-quietly/drop/taken"] != 2 {
		t.Errorf("otelcol_processor_enforcement_actions %v", counts)
	}
}

// TestSignalProcessRefusesUnknownPIDs: a pid that does not exist is gone.
func TestSignalProcessRefusesUnknownPIDs(t *testing.T) {
	reason, err := signalProcess("/proc", 1<<22+1, 0, syscall.SIGKILL)
	if reason != event.ReasonPIDGone && !errors.Is(err, syscall.EINVAL) {
		t.Errorf("reason %q, err %v", reason, err)
	}
}
