package k8s

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/vigilsec/vigil/internal/policy"
)

// Scope is which containers of the node a pod-scoped policy applies to,
// with Tetragon's semantics: a TracingPolicyNamespaced applies in its
// namespace only; podSelector matches pod labels (absent or empty: every
// pod); containerSelector matches the container's name as the label
// "name". Processes outside pods are never in a scope.
type Scope struct {
	namespace  string
	pods       labels.Selector
	containers labels.Selector
}

// NewScope returns the scope of p, or nil when p applies to the whole node
// (policy.PodScoped is false).
func NewScope(p *policy.TracingPolicy) (*Scope, error) {
	if !policy.PodScoped(p) {
		return nil, nil
	}
	s := &Scope{pods: labels.Everything(), containers: labels.Everything()}
	if p.Kind == policy.KindTracingPolicyNamespaced {
		s.namespace = p.Metadata.Namespace
	}
	var err error
	if p.Spec.PodSelector != nil {
		if s.pods, err = selector(p.Spec.PodSelector); err != nil {
			return nil, fmt.Errorf("spec.podSelector: %w", err)
		}
	}
	if p.Spec.ContainerSelector != nil {
		if s.containers, err = selector(p.Spec.ContainerSelector); err != nil {
			return nil, fmt.Errorf("spec.containerSelector: %w", err)
		}
	}
	return s, nil
}

func selector(ls *policy.LabelSelector) (labels.Selector, error) {
	m := &metav1.LabelSelector{MatchLabels: ls.MatchLabels}
	for _, e := range ls.MatchExpressions {
		m.MatchExpressions = append(m.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values,
		})
	}
	return metav1.LabelSelectorAsSelector(m)
}

// Matches reports whether the scope selects pod at all.
func (s *Scope) Matches(pod *Pod) bool {
	if s.namespace != "" && pod.Namespace != s.namespace {
		return false
	}
	return s.pods.Matches(labels.Set(pod.Labels))
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
			if s.containers.Matches(labels.Set{"name": c.Name}) {
				ids = append(ids, c.ID)
			}
		}
	}
	slices.Sort(ids)
	return ids
}
