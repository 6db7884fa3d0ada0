package promlive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Series is one series of a query's result: its labels and its samples
// (one for an instant query).
type Series struct {
	Labels  map[string]string
	Samples []Sample
}

// Sample is a value at a time.
type Sample struct {
	Time  time.Time
	Value float64
}

// apiResponse is the envelope of Prometheus's HTTP API (/api/v1).
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// get calls an API path with a query string and decodes its data into v.
func (l *Lab) get(ctx context.Context, path string, params url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.PrometheusURL+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// Query evaluates expr now (/api/v1/query). A scalar or string result is
// an error: every expression of the dashboards and rules is a vector.
func (l *Lab) Query(ctx context.Context, expr string) ([]Series, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := l.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: a %s, want a vector", expr, data.ResultType)
	}
	var out []Series
	for _, r := range data.Result {
		s, err := sample(r.Value)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		out = append(out, Series{Labels: r.Metric, Samples: []Sample{s}})
	}
	return out, nil
}

// QueryRange evaluates expr at every step from start to end
// (/api/v1/query_range).
func (l *Lab) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	params := url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	if err := l.get(ctx, "/api/v1/query_range", params, &data); err != nil {
		return nil, fmt.Errorf("query_range %s: %w", expr, err)
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range %s: a %s, want a matrix", expr, data.ResultType)
	}
	var out []Series
	for _, r := range data.Result {
		s := Series{Labels: r.Metric}
		for _, v := range r.Values {
			p, err := sample(v)
			if err != nil {
				return nil, fmt.Errorf("query_range %s: %w", expr, err)
			}
			s.Samples = append(s.Samples, p)
		}
		out = append(out, s)
	}
	return out, nil
}

// sample decodes the API's [unix seconds, "value"] pair.
func sample(v [2]any) (Sample, error) {
	ts, ok := v[0].(float64)
	str, ok2 := v[1].(string)
	if !ok || !ok2 {
		return Sample{}, fmt.Errorf("a sample %v, want [time, \"value\"]", v)
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return Sample{}, err
	}
	return Sample{Time: time.UnixMilli(int64(ts * 1000)), Value: f}, nil
}

// WaitFor evaluates expr every 250ms until it returns a series, and
// returns them; an error when ctx ends first, with its cause and the last
// error of the query, if it failed.
func (l *Lab) WaitFor(ctx context.Context, expr string) ([]Series, error) {
	var last error
	for {
		s, err := l.Query(ctx, expr)
		if err == nil && len(s) > 0 {
			return s, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no series before %w (the last query: %v)", expr, context.Cause(ctx), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Rule is a rule as Prometheus loaded it (/api/v1/rules).
type Rule struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	// State of an alerting rule: inactive, pending or firing.
	State string `json:"state"`
}

// Rules returns the rules Prometheus evaluates, with the health of their
// last evaluation.
func (l *Lab) Rules(ctx context.Context) ([]Rule, error) {
	var data struct {
		Groups []struct {
			Rules []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := l.get(ctx, "/api/v1/rules", url.Values{}, &data); err != nil {
		return nil, err
	}
	var out []Rule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}
