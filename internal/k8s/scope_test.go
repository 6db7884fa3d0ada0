package k8s

import (
	"slices"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

func TestScopeSelectsContainersOfMatchingPods(t *testing.T) {
	pods := []*Pod{
		{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web", "tier": "front"},
			Containers: []Container{{ID: "w-main", Name: "main", Repo: "registry.example/shop/web"}, {ID: "w-proxy", Name: "envoy", Repo: "docker.io/envoyproxy/envoy"}}},
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
		{"containerSelector by repo", tp(policy.KindTracingPolicy, "", nil, &policy.LabelSelector{MatchExpressions: []policy.LabelSelectorRequirement{
			{Key: "repo", Operator: "In", Values: []string{"docker.io/envoyproxy/envoy", "docker.io/library/nginx"}}}}),
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

func TestImageRepo(t *testing.T) {
	for _, tc := range []struct{ imageID, image, want string }{
		{"docker.io/library/busybox@sha256:aa11", "docker.io/library/busybox:1.36", "docker.io/library/busybox"},
		{"docker-pullable://busybox@sha256:aa11", "busybox:latest", "busybox"},
		{"sha256:aa11", "localhost:5000/tools/vigil:dev", "localhost:5000/tools/vigil"},
		{"", "", ""},
	} {
		if got := imageRepo(tc.imageID, tc.image); got != tc.want {
			t.Errorf("imageRepo(%q, %q) = %q, want %q", tc.imageID, tc.image, got, tc.want)
		}
	}
}
