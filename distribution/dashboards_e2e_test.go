package distribution_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/distribution/dashboards"
	"github.com/vigilsec/vigil/distribution/internal/promlive"
	"github.com/vigilsec/vigil/internal/testenv"
)

// dashboardValues are the values of the dashboards' variables under which
// every query selects everything the lab has: all jobs, nodes, namespaces
// and policies; Grafana's own intervals as a dashboard of the last few
// minutes would have them with a 1s scrape interval.
var dashboardValues = map[string]string{
	"job":             ".*",
	"node":            ".*",
	"namespace":       ".*",
	"policy":          ".*",
	"__rate_interval": "1m",
	"__range":         "5m",
}

// measuredOnly are the alerts that no workload can trigger on a healthy
// node: a BPF program skipped by the kernel, a kernel map above 90%. Their
// measured side (the expression without its final comparison) must return
// series here; vigil.rules.test.yaml proves their thresholds.
var measuredOnly = map[string]bool{
	"VigilBPFRunsSkipped":   true,
	"VigilBPFMapNearlyFull": true,
}

// finalComparison is the threshold a measured side is cut from.
var finalComparison = regexp.MustCompile(`(?s)^(.*\S)\s*>\s*[0-9.]+\s*$`)

// TestDashboardsAndAlertsLive runs otelcol-vigil under a workload, scraped
// by a real Prometheus that also loads the alert rules, and evaluates every
// query of every panel of the committed dashboards and every alert's
// expression through Prometheus's HTTP API: each must return series. The
// alerts the workload triggers (events lost, a policy refused, an exporter
// failing, a collector down, enforcement spiking) must be pending or
// firing in Prometheus.
func TestDashboardsAndAlertsLive(t *testing.T) {
	bin := testenv.CollectorBinary(t, collectorBinaryPath)
	prometheus := prometheusBinary(t, "prometheus")
	rules, err := filepath.Abs(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()
	lab, err := promlive.Start(ctx, promlive.Config{Collector: bin, Prometheus: prometheus, RuleFile: rules, Dir: t.TempDir(), PinPath: testenv.PinPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	}()
	work, stopWork := context.WithCancel(ctx)
	killed := make(chan int, 1)
	go func() {
		n, err := lab.Workload(work)
		if err != nil {
			t.Error(err)
		}
		killed <- n
	}()
	defer func() {
		stopWork()
		t.Logf("the workload ran; the kernel killed %d cats", <-killed)
	}()

	// The queries, by what they come from.
	type check struct{ what, expr string }
	var checks []check
	eachQuery(t, func(file, panel, q string) {
		expr, err := dashboards.Expand(q, dashboardValues)
		if err != nil {
			t.Fatalf("%s, %s: %v", file, panel, err)
		}
		checks = append(checks, check{fmt.Sprintf("%s: panel %q", file, panel), expr})
	})
	var alerts []string
	for _, g := range readRuleFile(t).Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			expr := r.Expr
			if measuredOnly[r.Alert] {
				m := finalComparison.FindStringSubmatch(expr)
				if m == nil {
					t.Fatalf("%s: no final comparison to cut from %q", r.Alert, expr)
				}
				expr = m[1]
			}
			checks = append(checks, check{"alert " + r.Alert, expr})
		}
	}

	// Every second, each query not yet answered, until all are or 40s
	// pass: rates need two scrapes of a counter that moved, and the
	// exporter's failures take their retries.
	empty := map[check]error{}
	for _, c := range checks {
		empty[c] = nil
	}
	deadline, stop := context.WithTimeout(ctx, 40*time.Second)
	defer stop()
	for len(empty) > 0 && deadline.Err() == nil {
		for c := range empty {
			s, err := lab.Query(deadline, c.expr)
			if err == nil && len(s) > 0 {
				delete(empty, c)
				continue
			}
			empty[c] = err
		}
		select {
		case <-deadline.Done():
		case <-time.After(time.Second):
		}
	}
	for _, c := range checks {
		if err, ok := empty[c]; ok {
			t.Errorf("%s: no series (%v): %s", c.what, err, c.expr)
		}
	}

	// Prometheus evaluates every rule without error, and the alerts the
	// lab triggers are pending (their for: has not passed) or firing.
	triggered := []string{"VigilEventsLost", "VigilPolicyRefused", "VigilExporterSendFailing", "VigilCollectorDown", "VigilEnforcementActionsSpike"}
	var last []promlive.Rule
	for {
		last, err = lab.Rules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		state := map[string]promlive.Rule{}
		for _, r := range last {
			state[r.Name] = r
		}
		var waiting []string
		for _, name := range alerts {
			r, ok := state[name]
			switch {
			case !ok:
				t.Fatalf("Prometheus did not load %s from %s", name, rules)
			case r.Health == "err":
				t.Fatalf("Prometheus evaluates %s with an error: %s", name, r.LastError)
			case r.Health != "ok":
				waiting = append(waiting, name+" (not evaluated yet)")
			case slices.Contains(triggered, name) && r.State == "inactive":
				waiting = append(waiting, name+" (inactive)")
			}
		}
		if len(waiting) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("alerts not as the workload makes them: %v\n%s", waiting, lab.Logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, r := range last {
		t.Logf("alert %s: %s", r.Name, r.State)
	}
}
