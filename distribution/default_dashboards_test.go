package distribution_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/distribution/dashboards"
)

// metricName finds the series a panel's query reads, once labels (by,
// without, matchers) are taken out.
var (
	metricName = regexp.MustCompile(`\b(?:vigil|otelcol)_[a-z0-9_]+\b`)
	labels     = regexp.MustCompile(`(?:\b(?:by|without)\s*\([^)]*\)|\{[^}]*\})`)
)

// queryMetrics is what a query needs to return series: the metrics of
// each side of its top-level "or", any one side being enough (a failures
// panel falls back to 0 times what was sent).
func queryMetrics(expr string) [][]string {
	var sides [][]string
	for _, side := range strings.Split(labels.ReplaceAllString(expr, ""), " or ") {
		sides = append(sides, metricName.FindAllString(side, -1))
	}
	return sides
}

// TestDefaultConfigFeedsEveryDashboardPanel: what `make run` runs, the
// embedded default configuration, exposes every metric the dashboards'
// panels read, once the node has done a little of what the detection
// library watches. (The live test, dashboards_e2e_test.go, evaluates the
// queries themselves under a configuration built to trip the alerts.)
func TestDefaultConfigFeedsEveryDashboardPanel(t *testing.T) {
	type need struct {
		panel string
		sides [][]string
	}
	var needs []need
	eachQuery(t, func(file, panel, expr string) {
		needs = append(needs, need{file + ": " + panel, queryMetrics(expr)})
	})
	dir := t.TempDir()
	metrics, telemetry := freeAddr(t), freeAddr(t)
	_, telemetryPort, _ := net.SplitHostPort(telemetry)
	c := startCollector(t, []string{
		"VIGIL_EVENTS_FILE=" + filepath.Join(dir, "events.jsonl"),
		"VIGIL_METRICS_ENDPOINT=" + metrics,
		"VIGIL_TELEMETRY_PORT=" + telemetryPort,
		"VIGIL_HEALTH_ENDPOINT=127.0.0.1:0",
		"VIGIL_EVENTS_SOCKET=" + filepath.Join(dir, "events.sock"),
	}, "--config", "vigil:default", "--set", "receivers::ebpf::metrics_interval=1s")
	defer c.Stop(t)

	var missing []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		// What a user's node does now and then: programs run, a
		// credential file is read (the library counts it in the kernel).
		for _, args := range [][]string{{"/bin/true"}, {"/bin/cat", "/etc/shadow"}} {
			exec.Command(args[0], args[1:]...).Run()
		}
		have := map[string]bool{}
		for _, addr := range []string{metrics, telemetry} {
			for _, n := range scrapeNames(addr) {
				have[n] = true
			}
		}
		missing = missing[:0]
		for _, n := range needs {
			if !slices.ContainsFunc(n.sides, func(side []string) bool {
				return !slices.ContainsFunc(side, func(m string) bool { return !hasFamily(have, m) })
			}) {
				missing = append(missing, fmt.Sprintf("%s: %v", n.panel, n.sides))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	var b strings.Builder
	for _, m := range missing {
		fmt.Fprintf(&b, "\n  %s", m)
	}
	t.Fatalf("under the default configuration, no series in a minute of:%s", b.String())
}

// eachQuery calls fn with every query of every panel of the committed
// dashboards.
func eachQuery(t *testing.T, fn func(file, panel, expr string)) {
	t.Helper()
	for _, d := range dashboards.All() {
		data, err := os.ReadFile(filepath.Join("dashboards", d.File))
		if err != nil {
			t.Fatal(err)
		}
		panels, err := dashboards.Panels(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range panels {
			for _, q := range p.Queries {
				fn(d.File, p.Title, q.Expr)
			}
		}
	}
}

// hasFamily reports whether a scrape had metric m: a histogram's queries
// name its _bucket, _sum and _count series.
func hasFamily(have map[string]bool, m string) bool {
	if have[m] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(m, suffix); ok && have[base] {
			return true
		}
	}
	return false
}

// scrapeNames returns the metric families a Prometheus endpoint exposes
// now, none when it does not answer.
func scrapeNames(addr string) []string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var names []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "# TYPE "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	return names
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
