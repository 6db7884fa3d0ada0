// Package dashboards builds Vigil's Grafana dashboards with the Grafana
// Foundation SDK: the types and builders are Grafana's own, so a panel, a
// query or a variable that Grafana would not take does not compile.
//
// The JSON a user imports is committed beside this code (*.json, written by
// `make generate`, which runs ./generate) and a test fails when it differs
// from what the code builds. Every query of every panel is evaluated against
// a running otelcol-vigil scraped by a real Prometheus by
// distribution/dashboards_e2e_test.go.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
)

// Dashboard is one of Vigil's dashboards.
type Dashboard struct {
	// File is the name it is committed under, in this directory.
	File  string
	build func() *dashboard.DashboardBuilder
}

// All returns Vigil's dashboards.
func All() []Dashboard {
	return []Dashboard{
		{File: "vigil-node-health.json", build: nodeHealth},
		{File: "vigil-security.json", build: security},
		{File: "vigil-policy.json", build: policyDetail},
	}
}

// JSON builds d and renders it as it is committed: indented, ending in a
// newline, panels numbered in order.
func (d Dashboard) JSON() ([]byte, error) {
	model, err := d.build().Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.File, err)
	}
	// Grafana identifies panels by id within a dashboard (links, the
	// panel editor); the SDK leaves them unset.
	for i, p := range model.Panels {
		switch {
		case p.Panel != nil:
			p.Panel.Id = cog.ToPtr(uint32(i + 1))
		case p.RowPanel != nil:
			p.RowPanel.Id = uint32(i + 1)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	// PromQL comparisons (>, <) stay readable in the file.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(model); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.File, err)
	}
	return buf.Bytes(), nil
}

// The label matchers of the dashboards' variables. Every series is
// filtered by job and node; node is the host part of instance, since a
// collector's two endpoints (vigil.* metrics on 9464, its own telemetry on
// 8888) differ only in the port.
const (
	sel       = `job=~"$job", instance=~"$node(:[0-9]+)?"`
	namespace = `k8s_namespace_name=~"$namespace"`
	policy    = `security_rule_name=~"$policy"`
)

// datasource is the panels' data source: the one the datasource variable
// chose.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

// newDashboard starts a dashboard with the variables every one has: the
// Prometheus data source, the jobs that scrape Vigil, and the nodes.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"vigil", "security", "ebpf"}).
		Editable().
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		// The jobs that scrape a collector's vigil.* metrics: their
		// otelcol_* series are Vigil's, not another collector's.
		WithVariable(queryVariable("job", "Job", `label_values(vigil_policies_loaded, job)`).
			Multi(true).
			IncludeAll(true)).
		WithVariable(queryVariable("node", "Node", `label_values(vigil_policies_loaded{job=~"$job"}, instance)`).
			Description("The host of the collector's endpoints (the instance label without its port).").
			Regex(`/^(.+?)(?::\d+)?$/`).
			Multi(true).
			IncludeAll(true).
			AllValue(".*"))
}

// namespaceVariable chooses Kubernetes namespaces. Series of host
// processes and of cluster-wide policies have no namespace: "All" (.*)
// keeps them too.
func namespaceVariable() *dashboard.QueryVariableBuilder {
	return queryVariable("namespace", "Namespace",
		`label_values({__name__=~"vigil_policy_counts_total|vigil_policy_hook_hits_total", job=~"$job"}, k8s_namespace_name)`).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr("All")},
			Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")},
		})
}

func queryVariable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Datasource(datasource()).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// query is one target of a panel: a PromQL expression and the legend of its
// series.
type query struct {
	expr, legend string
}

func target(q query) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		Expr(q.expr).
		LegendFormat(q.legend).
		Range()
}

// graph is a time series panel, half the dashboard's width.
func graph(title, description, unit string, queries ...query) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Min(0).
		Span(12).
		Height(8).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true).
			Calcs([]string{"mean", "max", "lastNotNull"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
	for _, q := range queries {
		p.WithTarget(target(q))
	}
	return p
}

// threshold turns a graph's values from green to red at limit, with a line
// drawn there.
func threshold(p *timeseries.PanelBuilder, limit float64) *timeseries.PanelBuilder {
	return p.
		Thresholds(dashboard.NewThresholdsConfigBuilder().
			Mode(dashboard.ThresholdsModeAbsolute).
			Steps([]dashboard.Threshold{{Color: "green"}, {Value: cog.ToPtr(limit), Color: "red"}})).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))
}

// single is a stat panel of one number, a quarter of the dashboard's width;
// red from redAt on when redAt is set.
func single(title, description, unit string, redAt *float64, q query) *stat.PanelBuilder {
	steps := []dashboard.Threshold{{Color: "green"}}
	if redAt != nil {
		steps = append(steps, dashboard.Threshold{Value: redAt, Color: "red"})
	}
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Span(6).
		Height(4).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeValue).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)).
		WithTarget(target(q))
}

// ranking is a table of an instant query over the dashboard's time range
// (topk of increase over $__range), one row per series, the labels as
// columns; the full width.
func ranking(title, description string, expr string) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(units.Short).
		Span(24).
		Height(8).
		WithTarget(prometheus.NewDataqueryBuilder().
			Datasource(datasource()).
			Expr(expr).
			Format(prometheus.PromQueryFormatTable).
			Instant()).
		// The query's time is the same on every row.
		WithTransformation(dashboard.DataTransformerConfig{
			Id:      "organize",
			Options: map[string]any{"excludeByName": map[string]bool{"Time": true}},
		}).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"})).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName("Value").Desc(true),
		})
}

// rate is the per-second rate of a counter over Grafana's rate interval.
func rate(metric, matchers string) string {
	return fmt.Sprintf("rate(%s{%s}[$__rate_interval])", metric, matchers)
}

// Units of the panels.
const (
	perSecond = units.OpsPerSecond
	fraction  = units.PercentUnit
	seconds   = units.Seconds
	bytesIEC  = units.BytesIEC
	count     = units.Short
)
