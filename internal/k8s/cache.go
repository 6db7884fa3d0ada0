package k8s

import (
	"context"
	"errors"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// PodEvent tells a subscriber that a pod of this node appeared (Old nil),
// changed, or went away (New nil).
type PodEvent struct {
	Old, New *Pod
}

// Cache is the node-local view of Kubernetes that events are labelled
// from: the pods scheduled on one node, indexed by container id, their
// namespaces, and the ReplicaSets and Jobs that lead from a pod to its
// workload. Informers keep it current; transforms drop every field of the
// API objects that Vigil does not read, so a node with many pods, or a
// cluster with many ReplicaSets, costs little memory.
type Cache struct {
	node      string
	factories []informers.SharedInformerFactory
	synced    []cache.InformerSynced

	mu          sync.RWMutex
	byUID       map[string]*Pod
	byContainer map[string]*Pod
	namespaces  map[string]map[string]string // name -> labels
	// owners maps "Kind/namespace/name" of a ReplicaSet or Job to its own
	// controller (Deployment, CronJob).
	owners      map[string]*Owner
	waiters     map[string][]chan struct{}
	subscribers []func(PodEvent)
	stop        chan struct{}
}

// NewCache prepares the informers for the pods of node. It watches
// nothing until Start.
func NewCache(client kubernetes.Interface, node string) (*Cache, error) {
	if node == "" {
		return nil, errors.New("node name is empty: the cache watches only the pods of its own node")
	}
	c := &Cache{
		node:        node,
		byUID:       map[string]*Pod{},
		byContainer: map[string]*Pod{},
		namespaces:  map[string]map[string]string{},
		owners:      map[string]*Owner{},
		waiters:     map[string][]chan struct{}{},
	}
	// Pods are the only objects filtered at the server: a DaemonSet pod
	// must not hold the cluster's pods. The owner chain objects cannot be
	// filtered by node, so their transform keeps only the owner reference.
	factory := informers.NewSharedInformerFactory(client, 0)
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}))

	pods := podFactory.Core().V1().Pods().Informer()
	namespaces := factory.Core().V1().Namespaces().Informer()
	replicaSets := factory.Apps().V1().ReplicaSets().Informer()
	jobs := factory.Batch().V1().Jobs().Informer()

	for _, inf := range []cache.SharedIndexInformer{pods, namespaces, replicaSets, jobs} {
		if err := inf.SetTransform(trim); err != nil {
			return nil, fmt.Errorf("k8s cache: %w", err)
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{pods, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { c.putPod(o) },
			UpdateFunc: func(_, o any) { c.putPod(o) },
			DeleteFunc: c.deletePod,
		}},
		{namespaces, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { c.putNamespace(o, false) },
			UpdateFunc: func(_, o any) { c.putNamespace(o, false) },
			DeleteFunc: func(o any) { c.putNamespace(o, true) },
		}},
		{replicaSets, ownerHandler(c, "ReplicaSet")},
		{jobs, ownerHandler(c, "Job")},
	}
	for _, h := range handlers {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return nil, fmt.Errorf("k8s cache: %w", err)
		}
		c.synced = append(c.synced, reg.HasSynced)
	}
	c.factories = []informers.SharedInformerFactory{factory, podFactory}
	return c, nil
}

// Start runs the informers until Stop. It does not wait for them: see
// WaitForSync.
func (c *Cache) Start() {
	c.stop = make(chan struct{})
	for _, f := range c.factories {
		f.Start(c.stop)
	}
}

// WaitForSync waits until every informer has listed its objects once, or
// ctx ends; an API server that cannot be reached surfaces here.
func (c *Cache) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("k8s cache: informers of node %s did not sync: %w", c.node, ctx.Err())
	}
	return nil
}

// Stop stops the informers and waits for them.
func (c *Cache) Stop() {
	if c.stop == nil {
		return
	}
	close(c.stop)
	for _, f := range c.factories {
		f.Shutdown()
	}
	c.stop = nil
}

// Node is the node whose pods the cache holds.
func (c *Cache) Node() string { return c.node }

// ByContainerID returns the pod that runs the container with runtime id
// id, and that container.
func (c *Cache) ByContainerID(id string) (*Pod, Container, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p := c.byContainer[id]
	if p == nil {
		return nil, Container{}, false
	}
	ctr, _ := p.Container(id)
	return p, ctr, true
}

// WaitForContainer returns as ByContainerID does once the container is
// known, or false when ctx ends first. It is how a brand-new container's
// first events wait for the informer to catch up.
func (c *Cache) WaitForContainer(ctx context.Context, id string) (*Pod, Container, bool) {
	for {
		c.mu.Lock()
		if p := c.byContainer[id]; p != nil {
			c.mu.Unlock()
			ctr, _ := p.Container(id)
			return p, ctr, true
		}
		ch := make(chan struct{})
		c.waiters[id] = append(c.waiters[id], ch)
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			c.mu.Lock()
			ws := c.waiters[id]
			for i, w := range ws {
				if w == ch {
					c.waiters[id] = append(ws[:i], ws[i+1:]...)
					break
				}
			}
			if len(c.waiters[id]) == 0 {
				delete(c.waiters, id)
			}
			c.mu.Unlock()
			return nil, Container{}, false
		}
	}
}

// Pods returns the pods of the node.
func (c *Cache) Pods() []*Pod {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Pod, 0, len(c.byUID))
	for _, p := range c.byUID {
		out = append(out, p)
	}
	return out
}

// NamespaceLabels returns the labels of namespace ns.
func (c *Cache) NamespaceLabels(ns string) (map[string]string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	l, ok := c.namespaces[ns]
	return l, ok
}

// Subscribe calls fn for every pod change from now on, in order, on the
// informer's goroutine: fn must not block for long.
func (c *Cache) Subscribe(fn func(PodEvent)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscribers = append(c.subscribers, fn)
}

func (c *Cache) putPod(o any) {
	in, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	p := podFromAPI(in)
	c.mu.Lock()
	p.Owners = c.ownerChain(p.Namespace, p.ownerRef)
	old := c.byUID[p.UID]
	c.index(old, p)
	subs := c.subscribers
	c.mu.Unlock()
	for _, fn := range subs {
		fn(PodEvent{Old: old, New: p})
	}
}

func (c *Cache) deletePod(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	in, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	c.mu.Lock()
	old := c.byUID[string(in.UID)]
	c.index(old, nil)
	subs := c.subscribers
	c.mu.Unlock()
	if old == nil {
		return
	}
	for _, fn := range subs {
		fn(PodEvent{Old: old})
	}
}

// index replaces old with p (either may be nil) and wakes whoever waits
// for one of p's containers. c.mu is held.
func (c *Cache) index(old, p *Pod) {
	if old != nil {
		delete(c.byUID, old.UID)
		for _, ctr := range old.Containers {
			if c.byContainer[ctr.ID] == old {
				delete(c.byContainer, ctr.ID)
			}
		}
	}
	if p == nil {
		return
	}
	c.byUID[p.UID] = p
	for _, ctr := range p.Containers {
		c.byContainer[ctr.ID] = p
		for _, ch := range c.waiters[ctr.ID] {
			close(ch)
		}
		delete(c.waiters, ctr.ID)
	}
}

func (c *Cache) putNamespace(o any, deleted bool) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if deleted {
		delete(c.namespaces, ns.Name)
		return
	}
	c.namespaces[ns.Name] = ns.Labels
}

// ownerHandler keeps owners current for one kind (ReplicaSet, Job), and
// re-resolves the owner chain of the pods that name such an object: a pod
// often arrives before its ReplicaSet does.
func ownerHandler(c *Cache, kind string) cache.ResourceEventHandler {
	put := func(o any, deleted bool) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		obj, ok := o.(metav1.Object)
		if !ok {
			return
		}
		key := kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
		c.mu.Lock()
		defer c.mu.Unlock()
		if deleted {
			delete(c.owners, key)
			return
		}
		var owner *Owner
		if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
			owner = &Owner{Kind: ref.Kind, Name: ref.Name}
		}
		c.owners[key] = owner
		var owned []*Pod
		for _, p := range c.byUID {
			if r := p.ownerRef; r != nil && r.Kind == kind && r.Name == obj.GetName() && p.Namespace == obj.GetNamespace() {
				owned = append(owned, p)
			}
		}
		for _, p := range owned {
			// Pods are shared read-only with callers: replace, never
			// mutate.
			np := *p
			np.Owners = c.ownerChain(p.Namespace, p.ownerRef)
			c.index(p, &np)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { put(o, false) },
		UpdateFunc: func(_, o any) { put(o, false) },
		DeleteFunc: func(o any) { put(o, true) },
	}
}

// ownerChain follows ref up through the known ReplicaSets and Jobs. c.mu is
// held.
func (c *Cache) ownerChain(ns string, ref *Owner) []Owner {
	var chain []Owner
	for ref != nil && len(chain) < 4 {
		chain = append(chain, *ref)
		ref = c.owners[ref.Kind+"/"+ns+"/"+ref.Name]
	}
	return chain
}

// trim drops what the cache never reads from the objects informers store.
func trim(o any) (any, error) {
	obj, ok := o.(metav1.Object)
	if !ok {
		return o, nil
	}
	obj.SetManagedFields(nil)
	// kubectl's copy of the whole object, often the largest annotation.
	if ann := obj.GetAnnotations(); ann != nil {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
	}
	switch v := o.(type) {
	case *corev1.Pod:
		keep := func(cs []corev1.Container) []corev1.Container {
			out := make([]corev1.Container, len(cs))
			for i, c := range cs {
				out[i] = corev1.Container{Name: c.Name, Image: c.Image}
			}
			return out
		}
		eph := make([]corev1.EphemeralContainer, len(v.Spec.EphemeralContainers))
		for i, c := range v.Spec.EphemeralContainers {
			eph[i].Name, eph[i].Image = c.Name, c.Image
		}
		v.Spec = corev1.PodSpec{NodeName: v.Spec.NodeName, Containers: keep(v.Spec.Containers),
			InitContainers: keep(v.Spec.InitContainers), EphemeralContainers: eph}
		v.Status = corev1.PodStatus{
			ContainerStatuses:          trimStatuses(v.Status.ContainerStatuses),
			InitContainerStatuses:      trimStatuses(v.Status.InitContainerStatuses),
			EphemeralContainerStatuses: trimStatuses(v.Status.EphemeralContainerStatuses),
		}
	case *corev1.Namespace:
		v.Spec, v.Status = corev1.NamespaceSpec{}, corev1.NamespaceStatus{}
		v.Annotations = nil
	case *appsv1.ReplicaSet:
		v.Spec, v.Status = appsv1.ReplicaSetSpec{}, appsv1.ReplicaSetStatus{}
		v.Labels, v.Annotations = nil, nil
	case *batchv1.Job:
		v.Spec, v.Status = batchv1.JobSpec{}, batchv1.JobStatus{}
		v.Labels, v.Annotations = nil, nil
	}
	return o, nil
}

func trimStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, len(in))
	for i, s := range in {
		out[i] = corev1.ContainerStatus{Name: s.Name, ContainerID: s.ContainerID}
	}
	return out
}
