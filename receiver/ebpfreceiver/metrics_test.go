package ebpfreceiver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// point is one data point of a sum or a gauge, as points keys it.
type point struct {
	value  int64
	double float64
	start  pcommon.Timestamp
}

// points keys every data point of md's sums and gauges by metric name and
// attribute values, sorted by key: "vigil.events{event.name=process.exec}".
func points(md pmetric.Metrics) map[string]point {
	out := map[string]point{}
	for _, rm := range md.ResourceMetrics().All() {
		for _, m := range rm.ScopeMetrics().At(0).Metrics().All() {
			addPoints(out, m)
		}
	}
	return out
}

func addPoints(out map[string]point, m pmetric.Metric) {
	{
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
		default:
			return
		}
		for _, dp := range dps.All() {
			var attrs []string
			for k, v := range dp.Attributes().All() {
				attrs = append(attrs, k+"="+v.AsString())
			}
			slices.Sort(attrs)
			out[m.Name()+"{"+strings.Join(attrs, ",")+"}"] = point{dp.IntValue(), dp.DoubleValue(), dp.StartTimestamp()}
		}
	}
}

// TestCountActionCountsPerContainerInTheKernel: a selector with Count and
// NoPost counts its matches in the kernel and posts nothing; with Count
// alone it does both. The counts are by policy, hook, the selector's other actions
// and container: the cgroup the test starts cat in is named as the
// container runtimes name theirs.
func TestCountActionCountsPerContainerInTheKernel(t *testing.T) {
	dir := t.TempDir()
	counted, posted := filepath.Join(dir, "counted"), filepath.Join(dir, "posted")
	for _, f := range []string{counted, posted} {
		os.WriteFile(f, []byte("x\n"), 0o644)
	}
	name := fmt.Sprintf("count-%d", time.Now().UnixNano())
	text := openatPolicy(name, counted, "Count\n      - action: NoPost") + fmt.Sprintf(`    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - %q
      matchActions:
      - action: Count
`, posted)
	r, sink := startWithPolicy(t, name, text)
	id := newContainerID(t)
	ctr := testenv.NewCgroup(t, "vigil-test.slice/cri-containerd-"+id+".scope")

	run := func(cmd *exec.Cmd) int {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", cmd.Args, err, out)
		}
		return cmd.ProcessState.Pid()
	}
	var hostPids, ctrPids []int
	for range 3 {
		hostPids = append(hostPids, run(exec.Command("/bin/cat", counted)))
	}
	for range 2 {
		ctrPids = append(ctrPids, run(ctr.Command(t, "/bin/cat", counted, counted)))
	}
	postedPid := run(ctr.Command(t, "/bin/cat", posted))
	waitFor(t, sink, "the posted open", isEvent(event.NameProcessKprobe, postedPid))

	got := points(r.collectMetrics())
	series := "{security_rule.name=" + name + ",vigil.action=NoPost,vigil.hook=sys_openat}"
	inCtr := "{container.id=" + id + ",security_rule.name=" + name + ",vigil.action=NoPost,vigil.hook=sys_openat}"
	postedInCtr := "{container.id=" + id + ",security_rule.name=" + name + ",vigil.action=Post,vigil.hook=sys_openat}"
	for k, want := range map[string]int64{
		"vigil.policy.counts" + series:      3, // three cats on the host
		"vigil.policy.counts" + inCtr:       4, // two cats of two opens each
		"vigil.policy.counts" + postedInCtr: 1,
		"vigil.policy.counts.overflow{}":    0,
	} {
		if p, ok := got[k]; !ok || p.value != want {
			t.Errorf("%s = %d (present %v), want %d", k, p.value, ok, want)
		}
	}
	if p := got["vigil.policy.counts"+series]; p.start == 0 {
		t.Error("the counts carry no start time")
	}
	// Counted, not posted: none of the counting cats has an event.
	for _, pid := range append(hostPids, ctrPids...) {
		for _, ld := range sink.AllLogs() {
			for _, rl := range ld.ResourceLogs().All() {
				for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
					if isEvent(event.NameProcessKprobe, pid)(record{resource: rl.Resource().Attributes(), lr: lr}) {
						t.Errorf("the count-only selector posted an event for pid %d", pid)
					}
				}
			}
		}
	}
}

// TestMetricsCountPolicyHooks: the kernel's counters of a policy's hook
// reach the metrics by policy and hook, policy events are counted by
// policy, and the calls a replaced version held back by rate limit stay
// counted as lost.
func TestMetricsCountPolicyHooks(t *testing.T) {
	dir := t.TempDir()
	limited, killed := filepath.Join(dir, "limited"), filepath.Join(dir, "killed")
	for _, f := range []string{limited, killed} {
		os.WriteFile(f, []byte("x\n"), 0o644)
	}
	name := fmt.Sprintf("hook-metrics-%d", time.Now().UnixNano())
	// One hook, two selectors: a rate-limited Post and a Sigkill.
	text := func(rateLimit string) string {
		return openatPolicy(name, limited, "Post\n        rateLimit: "+rateLimit) + fmt.Sprintf(`    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - %q
      matchActions:
      - action: Sigkill
`, killed)
	}
	policies := filepath.Join(t.TempDir(), "policies")
	os.Mkdir(policies, 0o755)
	writePolicy(t, policies, "policy.yaml", text("1m"))
	cfg := createDefaultConfig().(*Config)
	cfg.Policies = []string{policies}
	r, sink, _ := startReceiver(t, cfg)
	waitForStatus(t, r, name, func(st policy.Status) bool { return st.Running }, 5*time.Second)

	// Three opens of one file: the first is posted, the rate limit holds
	// back the other two.
	cat := exec.Command("/bin/cat", limited, limited, limited)
	if out, err := cat.CombinedOutput(); err != nil {
		t.Fatalf("cat: %v: %s", err, out)
	}
	waitFor(t, sink, "process.kprobe of cat", isEvent(event.NameProcessKprobe, cat.ProcessState.Pid()))
	kill := exec.Command("/bin/cat", killed)
	var exit *exec.ExitError
	if err := kill.Run(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("cat %s: %v, want killed", killed, err)
	}
	waitFor(t, sink, "process.kprobe of the killed cat", isEvent(event.NameProcessKprobe, kill.ProcessState.Pid()))

	got := points(r.collectMetrics())
	hook := "{security_rule.name=" + name + ",vigil.hook=sys_openat}"
	want := map[string]int64{
		"vigil.policy.hook.matches" + hook:            4,
		"vigil.policy.hook.rate_limited" + hook:       2,
		"vigil.policy.hook.signals" + hook:            1,
		"vigil.events.lost" + "{reason=rate_limited}": 2,
	}
	for k, v := range want {
		if got[k].value != v {
			t.Errorf("%s = %d, want %d", k, got[k].value, v)
		}
	}
	// Policy events by policy and program: cat, however the exec named it.
	var events int64
	for k, p := range got {
		if strings.HasPrefix(k, "vigil.events{event.name=process.kprobe,process.executable.path=") && strings.HasSuffix(k, "/cat,security_rule.name="+name+"}") {
			events += p.value
		}
	}
	if events != 2 {
		t.Errorf("vigil.events of %s by cat: %d, want 2 in %v", name, events, slices.Sorted(maps.Keys(got)))
	}
	// Every openat of the node is a hit, whoever makes it.
	if hits := got["vigil.policy.hook.hits"+hook]; hits.value < 4 || hits.start == 0 {
		t.Errorf("%s = %+v, want at least the 4 opens, counted from the policy's installation", "vigil.policy.hook.hits"+hook, hits)
	}
	first := got["vigil.policy.hook.hits"+hook].start

	// A new version counts from its installation; what the first held
	// back is still counted lost.
	writePolicy(t, policies, "policy.yaml", text("2m"))
	deadline := time.Now().Add(5 * time.Second)
	for got["vigil.policy.hook.hits"+hook].start == first && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = points(r.collectMetrics())
	}
	if got["vigil.policy.hook.hits"+hook].start == first {
		t.Fatal("the replaced policy's hook counts did not restart within 5s")
	}
	if m := got["vigil.policy.hook.matches"+hook].value; m != 0 {
		t.Errorf("the new version matched %d calls, want 0", m)
	}
	if lost := got["vigil.events.lost"+"{reason=rate_limited}"].value; lost != 2 {
		t.Errorf("%d rate-limited calls lost after the replacement, want 2", lost)
	}
}

// TestMetricsCountProgramRunsWhileStatsAreOn: with the kernel's BPF
// statistics on, the metrics say how often and how long each of Vigil's
// programs ran.
func TestMetricsCountProgramRunsWhileStatsAreOn(t *testing.T) {
	testenv.RequireBPF(t)
	t.Run("EnabledOutside", func(t *testing.T) {
		stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
		if err != nil {
			t.Fatalf("enabling BPF statistics: %v", err)
		}
		defer stats.Close()
		r, sink, _ := startReceiver(t, createDefaultConfig().(*Config))
		checkProgramRuns(t, r, sink)
	})
	// bpf_stats: the receiver holds the kernel's statistics on itself.
	// (The sysctl does not show it: it reports only its own setting.)
	t.Run("BPFStatsOption", func(t *testing.T) {
		cfg := createDefaultConfig().(*Config)
		cfg.BPFStats = true
		r, sink, _ := startReceiver(t, cfg)
		checkProgramRuns(t, r, sink)
	})
}

// checkProgramRuns runs a process and checks that the metrics count runs
// of the exec program, and the time they took.
func checkProgramRuns(t *testing.T, r *ebpfReceiver, sink *consumertest.LogsSink) {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sink, "process.exec", isEvent(event.NameProcessExec, cmd.ProcessState.Pid()))
	got := points(r.collectMetrics())
	var prog string
	for k := range got {
		if strings.HasPrefix(k, "vigil.bpf.runs"+"{bpf.program.name=vigil_exec_") {
			prog = strings.TrimPrefix(k, "vigil.bpf.runs")
		}
	}
	if prog == "" {
		t.Fatalf("no %s for the exec program in %v", "vigil.bpf.runs", slices.Sorted(maps.Keys(got)))
	}
	if runs, took := got["vigil.bpf.runs"+prog].value, got["vigil.bpf.run_time"+prog].double; runs < 1 || took <= 0 {
		t.Errorf("the exec program ran %d times in %gs, want at least once in some time", runs, took)
	}
}

// TestMetricsReportMapFill: the maps that fill with the node's activity
// report their entries and capacity; the process map holds this test's
// process at least.
func TestMetricsReportMapFill(t *testing.T) {
	r, _, _ := startReceiver(t, createDefaultConfig().(*Config))
	got := points(r.collectMetrics())
	procs := "{bpf.map.name=procs}"
	if n, c := got["vigil.bpf.map.entries"+procs].value, got["vigil.bpf.map.capacity"+procs].value; n < 1 || c != 65536 || n > c {
		t.Errorf("procs holds %d entries of %d, want some of 65536", n, c)
	}
	if c := got["vigil.bpf.map.capacity"+"{bpf.map.name=pending_returns}"].value; c != 8192 {
		t.Errorf("pending_returns capacity %d, want 8192", c)
	}
}

// TestObsReportCountsWhatTheNextConsumerTakes: the Collector's standard
// receiver series count the events the pipeline accepted, and, with a
// consumer that refuses, those it refused.
func TestObsReportCountsWhatTheNextConsumerTakes(t *testing.T) {
	testenv.RequireBPF(t)
	for _, c := range []struct {
		metric string
		next   consumer.Logs
	}{
		{"otelcol_receiver_accepted_log_records", new(consumertest.LogsSink)},
		{"otelcol_receiver_refused_log_records", consumertest.NewErr(errors.New("queue full"))},
	} {
		t.Run(c.metric, func(t *testing.T) {
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { tel.Shutdown(context.Background()) })
			set := receivertest.NewNopSettings(typ)
			set.TelemetrySettings = tel.NewTelemetrySettings()
			cfg := createDefaultConfig().(*Config)
			cfg.StatusFile = ""
			r, err := NewFactory().CreateLogs(context.Background(), set, cfg, c.next)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Shutdown(context.Background()) })
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				exec.Command("/bin/true").Run()
				m, err := tel.GetMetric(c.metric)
				if err == nil {
					if sum, ok := m.Data.(metricdata.Sum[int64]); ok && len(sum.DataPoints) > 0 && sum.DataPoints[0].Value > 0 {
						if got := attrString(sum.DataPoints[0].Attributes, "transport"); got != obsTransport {
							t.Errorf("transport %q, want %q", got, obsTransport)
						}
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s not above 0 within 5s (%v)", c.metric, err)
				}
			}
		})
	}
}

func attrString(s attribute.Set, key string) string {
	v, _ := s.Value(attribute.Key(key))
	return v.AsString()
}
