package k8s

import (
	"fmt"
	"slices"

	"github.com/vigilsec/vigil/internal/policy"
)

// Scope is which containers of the node a pod-scoped policy applies to,
// with Tetragon's semantics: a TracingPolicyNamespaced applies in its
// namespace only; podSelector matches pod labels (absent or empty: every
// pod); containerSelector matches the container's name as the label
// "name" and its image's repository as "repo". Processes outside pods are
// never in a scope.
type Scope struct {
	namespace  string
	pods       *selector
	containers *selector
}

// NewScope returns the scope of p, or nil when p applies to the whole node
// (policy.PodScoped is false).
func NewScope(p *policy.TracingPolicy) (*Scope, error) {
	if !policy.PodScoped(p) {
		return nil, nil
	}
	s := &Scope{}
	if p.Kind == policy.KindTracingPolicyNamespaced {
		s.namespace = p.Metadata.Namespace
	}
	var err error
	if s.pods, err = newSelector(p.Spec.PodSelector); err != nil {
		return nil, fmt.Errorf("spec.podSelector: %w", err)
	}
	if s.containers, err = newSelector(p.Spec.ContainerSelector); err != nil {
		return nil, fmt.Errorf("spec.containerSelector: %w", err)
	}
	return s, nil
}

// selector is a label selector, matched without Kubernetes' syntax checks
// on values: containerSelector's "repo" holds image repositories
// ("docker.io/library/nginx"), which are no label values. nil (no
// selector) matches everything.
type selector policy.LabelSelector

func newSelector(ls *policy.LabelSelector) (*selector, error) {
	if ls == nil {
		return nil, nil
	}
	for i, e := range ls.MatchExpressions {
		switch e.Operator {
		case "In", "NotIn", "Exists", "DoesNotExist":
		default:
			return nil, fmt.Errorf("matchExpressions[%d].operator: %q, want In, NotIn, Exists or DoesNotExist", i, e.Operator)
		}
	}
	return (*selector)(ls), nil
}

func (s *selector) Matches(set map[string]string) bool {
	if s == nil {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := set[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, ok := set[e.Key]
		switch e.Operator {
		case "In":
			ok = ok && slices.Contains(e.Values, v)
		case "NotIn":
			ok = !ok || !slices.Contains(e.Values, v)
		case "DoesNotExist":
			ok = !ok
		}
		if !ok {
			return false
		}
	}
	return true
}

// Matches reports whether the scope selects pod at all.
func (s *Scope) Matches(pod *Pod) bool {
	if s.namespace != "" && pod.Namespace != s.namespace {
		return false
	}
	return s.pods.Matches(pod.Labels)
}

// ContainerIDs returns the runtime ids of the containers of pods that the
// scope selects, sorted.
func (s *Scope) ContainerIDs(pods []*Pod) []string {
	var ids []string
	for _, p := range pods {
		if !s.Matches(p) {
			continue
		}
		for _, c := range p.Containers {
			if s.containers.Matches(map[string]string{"name": c.Name, "repo": c.Repo}) {
				ids = append(ids, c.ID)
			}
		}
	}
	slices.Sort(ids)
	return ids
}
