package eventstreamexporter

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottllog"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
	"github.com/vigilsec/vigil/internal/event"
)

// filter is a compiled eventstreampb.Filter: the fields that are set must
// all match, and a repeated field matches when one of its values does.
// A filter is read-only once compiled and safe for concurrent use.
type filter struct {
	namespaces   map[string]bool
	pods         []*regexp.Regexp
	containerIDs []string
	processes    []*regexp.Regexp
	events       map[string]bool
	policies     map[string]bool
	condition    *ottl.Condition[*ottllog.TransformContext]
}

// FieldError is a filter field that does not compile. Field is the field's
// name in eventstream.proto, with the index of a repeated field's value
// ("pod_regex[1]"), so that a client can point at the flag it came from.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

var errEmptyValue = errors.New("must not be empty")

// compileFilter checks and compiles f. Every field that does not compile is
// reported, each as a *FieldError, joined. A nil f matches every record.
// set is used by the OTTL parser (it logs the use of experimental
// functions).
func compileFilter(f *eventstreampb.Filter, set component.TelemetrySettings) (*filter, error) {
	if f == nil {
		return &filter{}, nil
	}
	var errs []error
	c := &filter{}
	c.namespaces = stringSet("namespaces", f.GetNamespaces(), &errs)
	c.pods = regexps("pod_regex", f.GetPodRegex(), &errs)
	for i, id := range f.GetContainerIds() {
		if id == "" {
			errs = append(errs, &FieldError{fmt.Sprintf("container_ids[%d]", i), errEmptyValue})
		}
		c.containerIDs = append(c.containerIDs, strings.ToLower(id))
	}
	c.processes = regexps("process_regex", f.GetProcessRegex(), &errs)
	c.events = stringSet("event_names", f.GetEventNames(), &errs)
	c.policies = stringSet("policy_names", f.GetPolicyNames(), &errs)
	if cond := strings.TrimSpace(f.GetCondition()); cond != "" {
		parser, err := ottllog.NewParser(ottlfuncs.StandardConverters[*ottllog.TransformContext](), set)
		if err == nil {
			c.condition, err = parser.ParseCondition(cond)
		}
		if err != nil {
			errs = append(errs, &FieldError{"condition", err})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func stringSet(field string, values []string, errs *[]error) map[string]bool {
	if len(values) == 0 {
		return nil
	}
	set := make(map[string]bool, len(values))
	for i, v := range values {
		if v == "" {
			*errs = append(*errs, &FieldError{fmt.Sprintf("%s[%d]", field, i), errEmptyValue})
		}
		set[v] = true
	}
	return set
}

func regexps(field string, exprs []string, errs *[]error) []*regexp.Regexp {
	var res []*regexp.Regexp
	for i, expr := range exprs {
		re, err := regexp.Compile(expr)
		if err != nil {
			*errs = append(*errs, &FieldError{fmt.Sprintf("%s[%d]", field, i), err})
			continue
		}
		res = append(res, re)
	}
	return res
}

// matchResource applies the filters on resource attributes, once per
// ResourceLogs, so a pod filter skips other pods' records without looking
// at them.
func (f *filter) matchResource(res pcommon.Map) bool {
	if f.namespaces != nil && !f.namespaces[str(res, event.AttrK8sNamespace)] {
		return false
	}
	if len(f.pods) > 0 {
		// Records outside pods (the host's own processes) have no pod
		// name, and a pod filter means pods, even for a regex that
		// matches the empty string.
		pod, ok := res.Get(event.AttrK8sPodName)
		if !ok || !anyMatch(f.pods, pod.AsString()) {
			return false
		}
	}
	if len(f.containerIDs) > 0 {
		id, ok := res.Get(event.AttrContainerID)
		if !ok || !hasAnyPrefix(strings.ToLower(id.AsString()), f.containerIDs) {
			return false
		}
	}
	return true
}

// matchRecord applies the filters on the record, cheapest first; the OTTL
// condition, the costliest, runs last and only when all others matched. A
// condition that fails to evaluate on a record (a type mismatch, say) does
// not match it.
func (f *filter) matchRecord(ctx context.Context, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord) bool {
	if f.events != nil && !f.events[lr.EventName()] {
		return false
	}
	attrs := lr.Attributes()
	if f.policies != nil && !f.policies[str(attrs, event.AttrSecurityRuleName)] {
		return false
	}
	if len(f.processes) > 0 {
		path, ok := attrs.Get(event.AttrProcessExecutablePath)
		if !ok || !anyMatch(f.processes, path.AsString()) {
			return false
		}
	}
	if f.condition != nil {
		tCtx := ottllog.NewTransformContext(rl, sl, lr)
		ok, err := f.condition.Eval(ctx, tCtx)
		tCtx.Close()
		return err == nil && ok
	}
	return true
}

// str is the attribute as a string; absent attributes are "", which no
// set accepts (empty values are refused at compile time).
func str(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
