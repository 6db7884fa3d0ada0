package k8s

import (
	"slices"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

func TestScopeSelectsContainersOfMatchingPods(t *testing.T) {
	pods := []*Pod{
		{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web", "tier": "front"},
			Containers: []Container{{ID: "w-main", Name: "main"}, {ID: "w-proxy", Name: "envoy"}}},
		{Name: "db", Namespace: "shop", Labels: map[string]string{"app": "db"},
			Containers: []Container{{ID: "d-main", Name: "main"}}},
		{Name: "web", Namespace: "blog", Labels: map[string]string{"app": "web"},
			Containers: []Container{{ID: "b-main", Name: "main"}}},
	}
	tp := func(kind, ns string, pod, ctr *policy.LabelSelector) *policy.TracingPolicy {
		return &policy.TracingPolicy{Kind: kind, Metadata: policy.ObjectMeta{Name: "p", Namespace: ns},
			Spec: policy.Spec{PodSelector: pod, ContainerSelector: ctr}}
	}
	for _, tc := range []struct {
		name string
		p    *policy.TracingPolicy
		want []string
	}{
		{"no selector: the whole node", tp(policy.KindTracingPolicy, "", nil, nil), nil},
		{"matchLabels", tp(policy.KindTracingPolicy, "", &policy.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, nil),
			[]string{"b-main", "w-main", "w-proxy"}},
		{"empty podSelector: every pod", tp(policy.KindTracingPolicy, "", &policy.LabelSelector{}, nil),
			[]string{"b-main", "d-main", "w-main", "w-proxy"}},
		{"matchExpressions", tp(policy.KindTracingPolicy, "", &policy.LabelSelector{MatchExpressions: []policy.LabelSelectorRequirement{
			{Key: "app", Operator: "In", Values: []string{"web", "db"}}, {Key: "tier", Operator: "DoesNotExist"}}}, nil),
			[]string{"b-main", "d-main"}},
		{"containerSelector by name", tp(policy.KindTracingPolicy, "", nil, &policy.LabelSelector{MatchLabels: map[string]string{"name": "envoy"}}),
			[]string{"w-proxy"}},
		{"namespaced: its namespace only", tp(policy.KindTracingPolicyNamespaced, "shop", nil, nil),
			[]string{"d-main", "w-main", "w-proxy"}},
		{"namespaced with podSelector", tp(policy.KindTracingPolicyNamespaced, "blog", &policy.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, nil),
			[]string{"b-main"}},
	} {
		s, err := NewScope(tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.want == nil {
			if s != nil {
				t.Errorf("%s: a scope for a policy of the whole node", tc.name)
			}
			continue
		}
		if got := s.ContainerIDs(pods); !slices.Equal(got, tc.want) {
			t.Errorf("%s: containers %v, want %v", tc.name, got, tc.want)
		}
	}
	_, err := NewScope(tp(policy.KindTracingPolicy, "", &policy.LabelSelector{MatchExpressions: []policy.LabelSelectorRequirement{
		{Key: "app", Operator: "Within", Values: []string{"x"}}}}, nil))
	if err == nil || err.Error()[:len("spec.podSelector: ")] != "spec.podSelector: " {
		t.Errorf("a bad operator: %v, want an error at spec.podSelector", err)
	}
}
