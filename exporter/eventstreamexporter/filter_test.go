package eventstreamexporter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
	"github.com/vigilsec/vigil/internal/event"
)

// matching compiles f and returns the seq of each record of recs it
// matches.
func matching(t *testing.T, f *eventstreampb.Filter, recs ...rec) []int {
	t.Helper()
	c, err := compileFilter(f, componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	var got []int
	for _, rl := range batch(recs...).ResourceLogs().All() {
		if !c.matchResource(rl.Resource().Attributes()) {
			continue
		}
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if c.matchRecord(context.Background(), rl, sl, lr) {
					pid, _ := lr.Attributes().Get(event.AttrProcessPID)
					got = append(got, int(pid.Int()))
				}
			}
		}
	}
	return got
}

func TestFilter(t *testing.T) {
	xwing := rec{seq: 1, name: event.NameProcessExec, binary: "/usr/bin/curl", pod: "xwing", namespace: "default", container: "3f1a2b"}
	tie := rec{seq: 2, name: event.NameProcessExit, binary: "/usr/bin/ls", pod: "tiefighter", namespace: "empire", container: "9e8d7c", uid: 1000}
	host := rec{seq: 3, name: event.NameProcessExec, binary: "/usr/sbin/sshd", policy: "ssh"}
	all := []rec{xwing, tie, host}

	tests := []struct {
		name   string
		filter *eventstreampb.Filter
		want   []int
	}{
		{"nil filter", nil, []int{1, 2, 3}},
		{"empty filter", &eventstreampb.Filter{}, []int{1, 2, 3}},
		{"namespace", &eventstreampb.Filter{Namespaces: []string{"empire", "kube-system"}}, []int{2}},
		{"pod regex is unanchored", &eventstreampb.Filter{PodRegex: []string{"fight"}}, []int{2}},
		{"pod regexes are ORed", &eventstreampb.Filter{PodRegex: []string{"^xwing$", "^tie"}}, []int{1, 2}},
		{"a pod filter never matches the host", &eventstreampb.Filter{PodRegex: []string{".*"}}, []int{1, 2}},
		{"container id prefix, any case", &eventstreampb.Filter{ContainerIds: []string{"3F1"}}, []int{1}},
		{"process regex on the executable path", &eventstreampb.Filter{ProcessRegex: []string{"bin/(curl|sshd)$"}}, []int{1, 3}},
		{"event names", &eventstreampb.Filter{EventNames: []string{event.NameProcessExit}}, []int{2}},
		{"policy names", &eventstreampb.Filter{PolicyNames: []string{"ssh"}}, []int{3}},
		{"OTTL on record attributes", &eventstreampb.Filter{Condition: `attributes["process.user.id"] == 1000`}, []int{2}},
		{"OTTL on resource attributes", &eventstreampb.Filter{Condition: `resource.attributes["k8s.pod.name"] == "xwing"`}, []int{1}},
		{"OTTL on the event name", &eventstreampb.Filter{Condition: `event_name == "process.exit"`}, []int{2}},
		{"OTTL converters", &eventstreampb.Filter{Condition: `IsMatch(attributes["process.executable.path"], "^/usr/sbin/")`}, []int{3}},
		{"fields are ANDed", &eventstreampb.Filter{ProcessRegex: []string{"curl|ls"}, EventNames: []string{event.NameProcessExec}}, []int{1}},
		{"nothing", &eventstreampb.Filter{Namespaces: []string{"default"}, EventNames: []string{event.NameProcessExit}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, matching(t, tt.filter, all...))
		})
	}
}

func TestFilterErrorsNameEveryField(t *testing.T) {
	_, err := compileFilter(&eventstreampb.Filter{
		Namespaces:   []string{"default", ""},
		PodRegex:     []string{"("},
		ContainerIds: []string{""},
		PolicyNames:  []string{""},
		Condition:    `nope == 1`,
	}, componenttest.NewNopTelemetrySettings())
	require.Error(t, err)
	assert.Equal(t, "namespaces[1]: must not be empty\n"+
		"pod_regex[0]: error parsing regexp: missing closing ): `(`\n"+
		"container_ids[0]: must not be empty\n"+
		"policy_names[0]: must not be empty\n"+
		"condition: 1:1: condition failed to parse near `nope == 1`: "+
		`segment "nope" from path "nope" is not a valid path nor a valid OTTL keyword for the log context - review https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/pkg/ottl/contexts/ottllog to see all valid paths`,
		err.Error())
}
