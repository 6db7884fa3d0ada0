package k8s

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"
)

// The TracingPolicy resources, as Tetragon's CRDs define them
// (distribution/kubernetes/crds).
var (
	TracingPolicyResource           = schema.GroupVersionResource{Group: "cilium.io", Version: "v1alpha1", Resource: "tracingpolicies"}
	TracingPolicyNamespacedResource = schema.GroupVersionResource{Group: "cilium.io", Version: "v1alpha1", Resource: "tracingpoliciesnamespaced"}
)

// PolicyObject is one TracingPolicy object of the cluster as policy text.
type PolicyObject struct {
	// Source names the object in logs and statuses, e.g.
	// "TracingPolicyNamespaced default/block-curl".
	Source string
	// YAML is the object's apiVersion, kind, metadata (name, namespace,
	// labels, annotations) and spec, for the same parser policy files go
	// through: a cluster object is refused with the same field paths.
	YAML []byte
}

// PolicyWatcher follows the TracingPolicy and TracingPolicyNamespaced
// objects of the cluster.
type PolicyWatcher struct {
	factory dynamicinformer.DynamicSharedInformerFactory
	synced  []cache.InformerSynced
	stores  []cache.Store
	stop    chan struct{}
	once    sync.Once
}

// WatchPolicies prepares informers on both kinds; changed is called, on
// an informer goroutine, after every add, update or delete.
func WatchPolicies(cfg *rest.Config, changed func()) (*PolicyWatcher, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("TracingPolicy watch: %w", err)
	}
	w := &PolicyWatcher{factory: dynamicinformer.NewDynamicSharedInformerFactory(client, 0), stop: make(chan struct{})}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
		DeleteFunc: func(any) { changed() },
	}
	for _, gvr := range []schema.GroupVersionResource{TracingPolicyResource, TracingPolicyNamespacedResource} {
		inf := w.factory.ForResource(gvr).Informer()
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return nil, fmt.Errorf("TracingPolicy watch: %w", err)
		}
		w.synced = append(w.synced, reg.HasSynced)
		w.stores = append(w.stores, inf.GetStore())
	}
	return w, nil
}

// Start starts the informers.
func (w *PolicyWatcher) Start() { w.factory.Start(w.stop) }

// WaitForSync waits for the first list of both kinds, or for ctx. A
// cluster without the CRDs installed never syncs: the error says so.
func (w *PolicyWatcher) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), w.synced...) {
		return fmt.Errorf("TracingPolicy objects not listed (are the CRDs of distribution/kubernetes/crds installed?): %w", ctx.Err())
	}
	return nil
}

// Stop stops the informers.
func (w *PolicyWatcher) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.factory.Shutdown()
	})
}

// Objects returns every policy object known now, sorted by source.
func (w *PolicyWatcher) Objects() []PolicyObject {
	var out []PolicyObject
	for _, st := range w.stores {
		for _, o := range st.List() {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			out = append(out, policyObject(u))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

func policyObject(u *unstructured.Unstructured) PolicyObject {
	name := u.GetName()
	if ns := u.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	meta := map[string]any{"name": u.GetName()}
	if ns := u.GetNamespace(); ns != "" {
		meta["namespace"] = ns
	}
	if l := u.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	// kubectl's last-applied-configuration is a copy of the object: noise
	// to the parser, and large.
	ann := u.GetAnnotations()
	delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
	if len(ann) > 0 {
		meta["annotations"] = ann
	}
	doc := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": meta}
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		// The object came from JSON: it has no value YAML cannot hold.
		data = []byte(fmt.Sprintf("# %v\n", err))
	}
	return PolicyObject{Source: u.GetKind() + " " + name, YAML: data}
}
