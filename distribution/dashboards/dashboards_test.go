package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// TestCommittedJSONIsGenerated: the files a user imports are exactly what
// the code builds, and no other dashboard file lies around.
func TestCommittedJSONIsGenerated(t *testing.T) {
	var want []string
	for _, d := range All() {
		want = append(want, d.File)
		built, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(d.File)
		if err != nil {
			t.Fatalf("%v: run `make generate` and commit", err)
		}
		if !bytes.Equal(built, committed) {
			t.Errorf("%s differs from what the code builds: run `make generate` and commit", d.File)
		}
	}
	files, _ := filepath.Glob("*.json")
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("dashboard files %v, the code builds %v", files, want)
	}
}

// TestDashboardsReadBackAsGrafanaTypes: each committed file decodes into the
// SDK's types (panels and Prometheus queries included), and every panel
// queries the chosen data source, has a description a reader hovers for,
// and a unit; every variable a query names is defined.
func TestDashboardsReadBackAsGrafanaTypes(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, d := range All() {
		data, err := os.ReadFile(d.File)
		if err != nil {
			t.Fatal(err)
		}
		var model dashboard.Dashboard
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&model); err != nil {
			t.Fatalf("%s: %v", d.File, err)
		}
		vars := map[string]bool{}
		for _, v := range model.Templating.List {
			vars[v.Name] = true
		}
		for _, want := range []string{"datasource", "job", "node"} {
			if !vars[want] {
				t.Errorf("%s: no %s variable", d.File, want)
			}
		}
		panels := 0
		for _, p := range model.Panels {
			if p.Panel == nil {
				continue
			}
			panels++
			title := d.File + ": " + *p.Panel.Title
			if p.Panel.Description == nil || *p.Panel.Description == "" {
				t.Errorf("%s: no description", title)
			}
			if p.Panel.FieldConfig == nil || p.Panel.FieldConfig.Defaults.Unit == nil {
				t.Errorf("%s: no unit", title)
			}
			if len(p.Panel.Targets) == 0 {
				t.Errorf("%s: no query", title)
			}
			for _, target := range p.Panel.Targets {
				q, ok := target.(*prometheus.Dataquery)
				if !ok {
					t.Errorf("%s: a %T query, want Prometheus", title, target)
					continue
				}
				if q.Datasource == nil || *q.Datasource.Uid != "${datasource}" {
					t.Errorf("%s: query %q does not use the datasource variable", title, q.Expr)
				}
				for _, v := range referencedVariables(q.Expr) {
					if !vars[v] && !strings.HasPrefix(v, "__") {
						t.Errorf("%s: query %q names $%s, which the dashboard does not define", title, q.Expr, v)
					}
				}
			}
		}
		if panels < 8 {
			t.Errorf("%s: %d panels", d.File, panels)
		}
	}
}
