package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// Panel is a panel of a dashboard file, with the PromQL of its queries as
// Grafana stores them (variables not yet replaced).
type Panel struct {
	Title   string
	Unit    string
	Queries []Query
}

// Query is one target of a panel.
type Query struct {
	Expr, Legend string
	// Instant is a table's query, evaluated once at the end of the range.
	Instant bool
}

// Panels reads the panels of a dashboard file, in order, rows left out.
func Panels(data []byte) ([]Panel, error) {
	var model struct {
		Panels []struct {
			Type        string `json:"type"`
			Title       string `json:"title"`
			FieldConfig struct {
				Defaults struct {
					Unit string `json:"unit"`
				} `json:"defaults"`
			} `json:"fieldConfig"`
			Targets []struct {
				Expr         string `json:"expr"`
				LegendFormat string `json:"legendFormat"`
				Instant      bool   `json:"instant"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &model); err != nil {
		return nil, fmt.Errorf("reading a dashboard: %w", err)
	}
	var panels []Panel
	for _, p := range model.Panels {
		if p.Type == "row" {
			continue
		}
		panel := Panel{Title: p.Title, Unit: p.FieldConfig.Defaults.Unit}
		for _, t := range p.Targets {
			panel.Queries = append(panel.Queries, Query{Expr: t.Expr, Legend: t.LegendFormat, Instant: t.Instant})
		}
		panels = append(panels, panel)
	}
	return panels, nil
}

// variableRef matches what Grafana replaces in a query: $name, ${name} and
// ${name:format}. A name that starts with a digit is a regular
// expression's group ($1 in label_replace), which Grafana leaves alone as it
// names no variable.
var variableRef = regexp.MustCompile(`\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))`)

// referencedVariables returns the names of the variables expr uses.
func referencedVariables(expr string) []string {
	var names []string
	for _, m := range variableRef.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1]+m[2])
	}
	return names
}

// Expand replaces the variables of expr with values, as Grafana would with
// those values chosen; a variable without a value is an error.
func Expand(expr string, values map[string]string) (string, error) {
	var missing []string
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		v, ok := values[m[1]+m[2]]
		if !ok {
			missing = append(missing, m[1]+m[2])
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for %v in %q", missing, expr)
	}
	return out, nil
}
