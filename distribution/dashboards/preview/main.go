// Command preview renders the main panels of Vigil's dashboards as PNG,
// for the README: it runs otelcol-vigil under a workload, scraped by
// Prometheus (package promlive, as the live test does), evaluates each
// panel's queries from the committed dashboard JSON over the run through
// /api/v1/query_range, and draws them. `make dashboards-preview` runs it
// as root (BPF):
//
//	preview -collector bin/otelcol-vigil -out docs/dashboards
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/vigilsec/vigil/distribution/dashboards"
	"github.com/vigilsec/vigil/distribution/internal/promlive"
)

// previews are the panels drawn, from the dashboards' files, and the PNG
// each is written to.
var previews = []struct{ dashboard, panel, file string }{
	{"vigil-node-health.json", "Events by name", "events-by-name.png"},
	{"vigil-node-health.json", "Events lost by reason", "events-lost.png"},
	{"vigil-node-health.json", "BPF run time by program", "bpf-run-time.png"},
	{"vigil-node-health.json", "Kernel map fill", "map-fill.png"},
	{"vigil-node-health.json", "Exporter send failures", "exporter-failures.png"},
	{"vigil-security.json", "Selector matches by policy", "policy-matches.png"},
	{"vigil-security.json", "In-kernel counts by workload", "in-kernel-counts.png"},
	{"vigil-security.json", "Enforcement actions by rule", "enforcement-actions.png"},
}

func main() {
	collector := flag.String("collector", "bin/otelcol-vigil", "the otelcol-vigil binary")
	prometheus := flag.String("prometheus", "prometheus", "the prometheus binary")
	dir := flag.String("dashboards", "distribution/dashboards", "the directory of the dashboards' JSON")
	out := flag.String("out", "docs/dashboards", "the directory the PNG files are written to")
	duration := flag.Duration("duration", 90*time.Second, "how long the workload runs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *collector, *prometheus, *dir, *out, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards preview:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, collector, prometheus, dir, out string, duration time.Duration) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root, to load the collector's BPF programs")
	}
	if prometheus, err = exec.LookPath(prometheus); err != nil {
		return fmt.Errorf("%w: run `scripts/install-deps.sh prometheus`", err)
	}
	if collector, err = filepath.Abs(collector); err != nil {
		return err
	}
	f, err := newFaces()
	if err != nil {
		return err
	}
	labDir, err := os.MkdirTemp("", "vigil-dashboards-preview-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(labDir)

	fmt.Printf("starting otelcol-vigil and prometheus in %s\n", labDir)
	lab, err := promlive.Start(ctx, promlive.Config{Collector: collector, Prometheus: prometheus, Dir: labDir})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := lab.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	fmt.Printf("running the workload for %s\n", duration)
	start := time.Now()
	work, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	killed, err := lab.Workload(work)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Printf("the kernel killed %d cats\n", killed)
	end := time.Now()

	// The variables as a user looking at the whole run would have them;
	// a short rate interval shows the workload's steps.
	values := map[string]string{
		"job": ".*", "node": ".*", "namespace": ".*", "policy": ".*",
		"__rate_interval": "10s",
		"__range":         fmt.Sprintf("%ds", int(end.Sub(start).Seconds())),
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, p := range previews {
		panel, err := findPanel(filepath.Join(dir, p.dashboard), p.panel)
		if err != nil {
			return err
		}
		pl := plot{title: panel.Title, unit: panel.Unit}
		for _, q := range panel.Queries {
			expr, err := dashboards.Expand(q.Expr, values)
			if err != nil {
				return fmt.Errorf("%s: %w", p.panel, err)
			}
			series, err := lab.QueryRange(ctx, expr, start.Add(10*time.Second), end, time.Second)
			if err != nil {
				return fmt.Errorf("%s: %w", p.panel, err)
			}
			for _, s := range series {
				l := line{name: legend(q.Legend, s.Labels)}
				for _, smp := range s.Samples {
					l.times = append(l.times, smp.Time)
					l.values = append(l.values, smp.Value)
				}
				pl.lines = append(pl.lines, l)
			}
		}
		if len(pl.lines) == 0 {
			return fmt.Errorf("%s: %s: no series to draw", p.dashboard, p.panel)
		}
		if err := writePNG(filepath.Join(out, p.file), pl.render(f)); err != nil {
			return err
		}
		fmt.Printf("%s: %s (%d series)\n", filepath.Join(out, p.file), p.panel, len(pl.lines))
	}
	return nil
}

func findPanel(file, title string) (dashboards.Panel, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return dashboards.Panel{}, err
	}
	panels, err := dashboards.Panels(data)
	if err != nil {
		return dashboards.Panel{}, fmt.Errorf("%s: %w", file, err)
	}
	for _, p := range panels {
		if p.Title == title {
			return p, nil
		}
	}
	return dashboards.Panel{}, fmt.Errorf("%s has no panel %q", file, title)
}

// legendLabel is a label in a Grafana legend format: {{name}}.
var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// legend names a series as Grafana would with the query's legend format.
func legend(format string, labels map[string]string) string {
	name := strings.Join(strings.Fields(legendLabel.ReplaceAllStringFunc(format, func(ref string) string {
		return labels[legendLabel.FindStringSubmatch(ref)[1]]
	})), " ")
	if name == "" {
		return fmt.Sprint(labels)
	}
	return name
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
