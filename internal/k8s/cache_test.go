package k8s

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vigilsec/vigil/internal/testenv"
)

// testNode is the node the cache under test runs on. No kubelet runs: the
// tests write spec.nodeName and the container statuses themselves.
const testNode = "vigil-test-node"

// eventually is the deadline for what the informers deliver: generous,
// the API server is real and the machine may be busy.
const eventually = 15 * time.Second

// TestCache runs against one real kube-apiserver and etcd, shared by the
// subtests (starting them takes seconds); each subtest works in a
// namespace of its own.
func TestCache(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset
	c, err := NewCache(cs, testNode)
	require.NoError(t, err)
	c.Start()
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.WaitForSync(ctx))

	k := &kubeFixture{cs: cs}
	t.Run("OnlyPodsOfItsNode", func(t *testing.T) { testOnlyPodsOfItsNode(t, k, c) })
	t.Run("ContainersOfEveryKind", func(t *testing.T) { testContainersOfEveryKind(t, k, c) })
	t.Run("RestartedContainerReplacesItsID", func(t *testing.T) { testRestartedContainer(t, k, c) })
	t.Run("WaitForContainerReturnsWhenStatusArrives", func(t *testing.T) { testWaitForContainer(t, k, c) })
	t.Run("WaitForContainerEndsWithContext", func(t *testing.T) { testWaitForContainerEnds(t, c) })
	t.Run("DeletedPodIsGone", func(t *testing.T) { testDeletedPod(t, k, c) })
	t.Run("DeploymentChain", func(t *testing.T) { testDeploymentChain(t, k, c, false) })
	t.Run("DeploymentChainPodBeforeReplicaSet", func(t *testing.T) { testDeploymentChain(t, k, c, true) })
	t.Run("CronJobChain", func(t *testing.T) { testCronJobChain(t, k, c) })
	t.Run("DirectOwner", func(t *testing.T) { testDirectOwner(t, k, c) })
	t.Run("NamespaceLabels", func(t *testing.T) { testNamespaceLabels(t, k, c) })
	t.Run("SubscribeSeesAddUpdateDelete", func(t *testing.T) { testSubscribe(t, k, c) })
	t.Run("InformerKeepsTrimmedObjects", func(t *testing.T) { testInformerTrims(t, k, c) })
}

func testOnlyPodsOfItsNode(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	other := k.pod(t, ns, "elsewhere", "other-node", nil, "app")
	k.setStatus(t, other, map[string]string{"app": containerID(t, "elsewhere")})
	// Created after the other node's pod: once it is in the cache, the
	// informer has seen everything written before it.
	here := k.pod(t, ns, "here", testNode, nil, "app")
	k.setStatus(t, here, map[string]string{"app": containerID(t, "here")})

	p := waitPod(t, c, containerID(t, "here"))
	assert.Equal(t, "here", p.Name)
	assert.Equal(t, ns, p.Namespace)
	assert.Equal(t, testNode, p.NodeName)
	assert.Equal(t, string(here.UID), p.UID)
	_, _, ok := c.ByContainerID(containerID(t, "elsewhere"))
	assert.False(t, ok, "a pod of another node is in the cache")
	for _, p := range c.Pods() {
		assert.NotEqual(t, "other-node", p.NodeName, "Pods() holds %s/%s of another node", p.Namespace, p.Name)
	}
	assert.Equal(t, testNode, c.Node())
}

func testContainersOfEveryKind(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	pod := k.build(ns, "kinds", testNode, nil, "app")
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "registry.local:5000/tools/init:1.2"}}
	pod.Spec.Containers[0].Image = "nginx"
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: "envoy@sha256:" + containerID(t, "digest")})
	pod = k.create(t, pod)
	// Ephemeral containers are only ever added through their subresource,
	// as kubectl debug does.
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debugger", Image: "busybox:1.37", TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent,
	}}}
	pod, err := k.cs.CoreV1().Pods(ns).UpdateEphemeralContainers(t.Context(), pod.Name, pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{status("init", "registry.local:5000/tools/init:1.2", "containerd://"+containerID(t, "init"))}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{
		status("app", "nginx", "containerd://"+containerID(t, "app")),
		// Not started yet: no id, so not indexed.
		status("sidecar", "envoy", ""),
	}
	pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{status("debugger", "busybox:1.37", "cri-o://"+containerID(t, "debugger"))}
	_, err = k.cs.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)

	for id, want := range map[string]Container{
		"init":     {Name: "init", ImageName: "registry.local:5000/tools/init", ImageTag: "1.2"},
		"app":      {Name: "app", ImageName: "nginx", ImageTag: "latest"},
		"debugger": {Name: "debugger", ImageName: "busybox", ImageTag: "1.37"},
	} {
		want.ID = containerID(t, id)
		p := waitPod(t, c, want.ID)
		_, ctr, _ := c.ByContainerID(want.ID)
		assert.Equal(t, want, ctr, id)
		assert.Equal(t, "kinds", p.Name)
	}
	p, _, _ := c.ByContainerID(containerID(t, "app"))
	assert.Len(t, p.Containers, 3, "the container without an id is not indexed: %+v", p.Containers)
}

func testRestartedContainer(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	pod := k.pod(t, ns, "restarts", testNode, nil, "app")
	pod = k.setStatus(t, pod, map[string]string{"app": containerID(t, "first")})
	waitPod(t, c, containerID(t, "first"))
	k.setStatus(t, pod, map[string]string{"app": containerID(t, "second")})
	waitPod(t, c, containerID(t, "second"))
	_, _, ok := c.ByContainerID(containerID(t, "first"))
	assert.False(t, ok, "the id of the container before its restart is still indexed")
}

func testWaitForContainer(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	id := containerID(t, "late")
	type result struct {
		pod *Pod
		ctr Container
		ok  bool
	}
	got := make(chan result, 1)
	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	go func() {
		p, ctr, ok := c.WaitForContainer(ctx, id)
		got <- result{p, ctr, ok}
	}()
	// The pod exists before its container has an id, as it does between
	// scheduling and the kubelet's first status.
	pod := k.pod(t, ns, "late", testNode, nil, "app")
	// The informer delivers a namespace's changes in order: once a pod
	// created after it is in the cache, the cache has seen "late" too.
	marker := k.pod(t, ns, "marker", testNode, nil, "app")
	k.setStatus(t, marker, map[string]string{"app": containerID(t, "marker")})
	waitPod(t, c, containerID(t, "marker"))
	select {
	case r := <-got:
		t.Fatalf("WaitForContainer returned %+v before the container had an id", r)
	default:
	}
	k.setStatus(t, pod, map[string]string{"app": "containerd://" + id})
	r := <-got
	require.True(t, r.ok, "WaitForContainer ended without the container")
	assert.Equal(t, "late", r.pod.Name)
	assert.Equal(t, "app", r.ctr.Name)

	// A known container returns at once.
	p, _, ok := c.WaitForContainer(t.Context(), id)
	assert.True(t, ok)
	assert.Equal(t, "late", p.Name)
}

func testWaitForContainerEnds(t *testing.T, c *Cache) {
	id := containerID(t, "never")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	p, _, ok := c.WaitForContainer(ctx, id)
	assert.False(t, ok)
	assert.Nil(t, p)
	c.mu.RLock()
	defer c.mu.RUnlock()
	assert.NotContains(t, c.waiters, id, "a waiter that gave up is still registered")
}

func testDeletedPod(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	pod := k.pod(t, ns, "doomed", testNode, nil, "app")
	k.setStatus(t, pod, map[string]string{"app": containerID(t, "doomed")})
	waitPod(t, c, containerID(t, "doomed"))
	require.NoError(t, k.cs.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, *metav1.NewDeleteOptions(0)))
	require.Eventually(t, func() bool {
		_, _, ok := c.ByContainerID(containerID(t, "doomed"))
		return !ok
	}, eventually, 20*time.Millisecond, "the deleted pod's container is still indexed")
	for _, p := range c.Pods() {
		assert.NotEqual(t, string(pod.UID), p.UID, "Pods() still holds the deleted pod")
	}
}

func testDeploymentChain(t *testing.T, k *kubeFixture, c *Cache, podFirst bool) {
	ns := k.namespace(t, nil)
	// No controller-manager runs: the ReplicaSet is written as the
	// Deployment controller would, owned by a Deployment object.
	deploy, err := k.cs.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(map[string]string{"app": "web"}),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c", OwnerReferences: []metav1.OwnerReference{
			controllerRef("apps/v1", "Deployment", deploy.Name, deploy.UID),
		}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(map[string]string{"app": "web"}),
		},
	}
	createRS := func() *appsv1.ReplicaSet {
		out, err := k.cs.AppsV1().ReplicaSets(ns).Create(t.Context(), rs, metav1.CreateOptions{})
		require.NoError(t, err)
		return out
	}
	id := containerID(t, "web")
	// The pod's reference needs the ReplicaSet's uid; when the pod comes
	// first it names a uid the ReplicaSet will not have, which the cache
	// never looks at.
	rsUID := types.UID("00000000-0000-0000-0000-000000000001")
	if !podFirst {
		rsUID = createRS().UID
	}
	pod := k.pod(t, ns, "web-7d4b9c-x2x9q", testNode, []metav1.OwnerReference{
		controllerRef("apps/v1", "ReplicaSet", rs.Name, rsUID),
	}, "app")
	k.setStatus(t, pod, map[string]string{"app": id})
	p := waitPod(t, c, id)
	if podFirst {
		assert.Equal(t, []Owner{{Kind: "ReplicaSet", Name: "web-7d4b9c"}}, p.Owners)
		createRS()
	}
	want := []Owner{{Kind: "ReplicaSet", Name: "web-7d4b9c"}, {Kind: "Deployment", Name: "web"}}
	require.Eventually(t, func() bool {
		p, _, ok := c.ByContainerID(id)
		return ok && slices.Equal(p.Owners, want)
	}, eventually, 20*time.Millisecond, "owner chain of the pod never became %v", want)
	p, _, _ = c.ByContainerID(id)
	w, ok := p.Workload()
	assert.True(t, ok)
	assert.Equal(t, Owner{Kind: "Deployment", Name: "web"}, w)
	// The re-resolved pod replaced the old one everywhere.
	for _, q := range c.Pods() {
		if q.UID == p.UID {
			assert.Equal(t, want, q.Owners)
		}
	}
}

func testCronJobChain(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	tmpl := template(nil)
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	cron, err := k.cs.BatchV1().CronJobs(ns).Create(t.Context(), &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "backup"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: tmpl},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	job, err := k.cs.BatchV1().Jobs(ns).Create(t.Context(), &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "backup-29123456", OwnerReferences: []metav1.OwnerReference{
			controllerRef("batch/v1", "CronJob", cron.Name, cron.UID),
		}},
		Spec: batchv1.JobSpec{Template: tmpl},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := k.pod(t, ns, "backup-29123456-abcde", testNode, []metav1.OwnerReference{
		controllerRef("batch/v1", "Job", job.Name, job.UID),
	}, "app")
	id := containerID(t, "backup")
	k.setStatus(t, pod, map[string]string{"app": id})
	want := []Owner{{Kind: "Job", Name: "backup-29123456"}, {Kind: "CronJob", Name: "backup"}}
	require.Eventually(t, func() bool {
		p, _, ok := c.ByContainerID(id)
		return ok && slices.Equal(p.Owners, want)
	}, eventually, 20*time.Millisecond, "owner chain of the job's pod never became %v", want)
}

func testDirectOwner(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	// StatefulSets and DaemonSets own their pods themselves; a
	// non-controller reference is not an owner.
	pod := k.pod(t, ns, "db-0", testNode, []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "not-a-controller", UID: "00000000-0000-0000-0000-000000000002"},
		controllerRef("apps/v1", "StatefulSet", "db", "00000000-0000-0000-0000-000000000003"),
	}, "app")
	k.setStatus(t, pod, map[string]string{"app": containerID(t, "db")})
	p := waitPod(t, c, containerID(t, "db"))
	assert.Equal(t, []Owner{{Kind: "StatefulSet", Name: "db"}}, p.Owners)

	bare := k.pod(t, ns, "bare", testNode, nil, "app")
	k.setStatus(t, bare, map[string]string{"app": containerID(t, "bare")})
	p = waitPod(t, c, containerID(t, "bare"))
	assert.Empty(t, p.Owners)
	_, ok := p.Workload()
	assert.False(t, ok, "a bare pod has a workload")
}

func testNamespaceLabels(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, map[string]string{"team": "payments"})
	require.Eventually(t, func() bool {
		l, ok := c.NamespaceLabels(ns)
		return ok && l["team"] == "payments" && l["kubernetes.io/metadata.name"] == ns
	}, eventually, 20*time.Millisecond)
	obj, err := k.cs.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	require.NoError(t, err)
	obj.Labels["team"] = "ledger"
	_, err = k.cs.CoreV1().Namespaces().Update(t.Context(), obj, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		l, _ := c.NamespaceLabels(ns)
		return l["team"] == "ledger"
	}, eventually, 20*time.Millisecond, "namespace label update not seen")
	_, ok := c.NamespaceLabels("no-such-namespace")
	assert.False(t, ok)
}

func testSubscribe(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	var (
		mu     sync.Mutex
		events []PodEvent
	)
	c.Subscribe(func(e PodEvent) {
		p := e.New
		if p == nil {
			p = e.Old
		}
		if p.Namespace != ns {
			return
		}
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	seen := func(match func(PodEvent) bool) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.ContainsFunc(events, match)
		}
	}
	pod := k.pod(t, ns, "watched", testNode, nil, "app")
	require.Eventually(t, seen(func(e PodEvent) bool { return e.Old == nil && e.New != nil && e.New.Name == "watched" }),
		eventually, 20*time.Millisecond, "no add event")
	id := containerID(t, "watched")
	k.setStatus(t, pod, map[string]string{"app": id})
	require.Eventually(t, seen(func(e PodEvent) bool {
		if e.Old == nil || e.New == nil {
			return false
		}
		_, had := e.Old.Container(id)
		_, has := e.New.Container(id)
		return !had && has
	}), eventually, 20*time.Millisecond, "no update event with the new container")
	require.NoError(t, k.cs.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, *metav1.NewDeleteOptions(0)))
	require.Eventually(t, seen(func(e PodEvent) bool { return e.New == nil && e.Old != nil && e.Old.Name == "watched" }),
		eventually, 20*time.Millisecond, "no delete event")
}

func testInformerTrims(t *testing.T, k *kubeFixture, c *Cache) {
	ns := k.namespace(t, nil)
	pod := k.build(ns, "heavy", testNode, nil, "app")
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SECRET", Value: "hunter2"}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	pod = k.create(t, pod)
	require.NotEmpty(t, pod.ManagedFields, "the API server sets managedFields; without them this test proves nothing")
	k.setStatus(t, pod, map[string]string{"app": containerID(t, "heavy")})
	waitPod(t, c, containerID(t, "heavy"))

	// The pod informer's store is what the cache's memory holds.
	store := c.factories[1].Core().V1().Pods().Informer().GetStore()
	obj, ok, err := store.GetByKey(ns + "/heavy")
	require.NoError(t, err)
	require.True(t, ok)
	stored := obj.(*corev1.Pod)
	assert.Nil(t, stored.ManagedFields)
	assert.Nil(t, stored.Spec.Volumes)
	assert.Equal(t, []corev1.Container{{Name: "app", Image: "busybox:1.37"}}, stored.Spec.Containers)
	assert.Equal(t, testNode, stored.Spec.NodeName)
	assert.Empty(t, stored.Status.Conditions)
	assert.Equal(t, []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + containerID(t, "heavy")}},
		stored.Status.ContainerStatuses)
}

// TestTrim pins down what each kind keeps.
func TestTrim(t *testing.T) {
	mf := []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	ctrl := []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", "web", "u")}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "1"}, Annotations: map[string]string{"b": "2"},
			ManagedFields: mf, OwnerReferences: ctrl},
		Spec: corev1.PodSpec{
			NodeName:            "n",
			Volumes:             []corev1.Volume{{Name: "v"}},
			InitContainers:      []corev1.Container{{Name: "i", Image: "i:1", Command: []string{"x"}}},
			Containers:          []corev1.Container{{Name: "c", Image: "c:1", Env: []corev1.EnvVar{{Name: "E"}}}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e", Image: "e:1", Args: []string{"y"}}}},
			ServiceAccountName:  "sa",
		},
		Status: corev1.PodStatus{
			Phase:                 corev1.PodRunning,
			Conditions:            []corev1.PodCondition{{Type: corev1.PodReady}},
			ContainerStatuses:     []corev1.ContainerStatus{{Name: "c", ContainerID: "containerd://1", Image: "c:1", RestartCount: 3}},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "i", ContainerID: "containerd://2"}},
		},
	}
	out, err := trim(pod)
	require.NoError(t, err)
	p := out.(*corev1.Pod)
	assert.Nil(t, p.ManagedFields)
	assert.Equal(t, ctrl, p.OwnerReferences)
	assert.Equal(t, map[string]string{"a": "1"}, p.Labels)
	assert.Equal(t, map[string]string{"b": "2"}, p.Annotations)
	assert.Equal(t, corev1.PodSpec{
		NodeName:            "n",
		InitContainers:      []corev1.Container{{Name: "i", Image: "i:1"}},
		Containers:          []corev1.Container{{Name: "c", Image: "c:1"}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e", Image: "e:1"}}},
	}, p.Spec)
	assert.Equal(t, corev1.PodStatus{
		ContainerStatuses:          []corev1.ContainerStatus{{Name: "c", ContainerID: "containerd://1"}},
		InitContainerStatuses:      []corev1.ContainerStatus{{Name: "i", ContainerID: "containerd://2"}},
		EphemeralContainerStatuses: []corev1.ContainerStatus{},
	}, p.Status)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{"t": "x"},
		Annotations: map[string]string{"big": "y"}, ManagedFields: mf},
		Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}}
	out, _ = trim(ns)
	assert.Equal(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{"t": "x"}}}, out)

	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs", Labels: map[string]string{"l": "1"}, ManagedFields: mf, OwnerReferences: ctrl},
		Spec: appsv1.ReplicaSetSpec{Template: template(map[string]string{"l": "1"})}}
	out, _ = trim(rs)
	assert.Equal(t, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs", OwnerReferences: ctrl}}, out)

	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Annotations: map[string]string{"a": "1"}, ManagedFields: mf, OwnerReferences: ctrl},
		Spec: batchv1.JobSpec{Template: template(nil)}, Status: batchv1.JobStatus{Active: 1}}
	out, _ = trim(job)
	assert.Equal(t, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", OwnerReferences: ctrl}}, out)

	// Tombstones and other values pass through untouched.
	assert.Equal(t, "x", must(trim("x")))
}

func TestSplitImage(t *testing.T) {
	const digest = "sha256:45b23dee08af5e43a7fea6c4cf9c25ccf269ee113168c19722f87876677c5cb2"
	for ref, want := range map[string][2]string{
		"nginx":                        {"nginx", "latest"},
		"nginx:1.27":                   {"nginx", "1.27"},
		"docker.io/library/nginx:1.27": {"docker.io/library/nginx", "1.27"},
		"registry:5000/a/b:1.2":        {"registry:5000/a/b", "1.2"},
		"registry:5000/a/b":            {"registry:5000/a/b", "latest"},
		"x@" + digest:                  {"x", ""},
		"x:1@" + digest:                {"x", "1"},
		"registry:5000/x@" + digest:    {"registry:5000/x", ""},
		"[fd00::1]:5000/img:v2":        {"[fd00::1]:5000/img", "v2"},
		"":                             {"", ""},
	} {
		name, tag := SplitImage(ref)
		assert.Equal(t, want, [2]string{name, tag}, "SplitImage(%q)", ref)
	}
}

func TestRuntimeContainerID(t *testing.T) {
	const id = "4f9a6bd0c8a3e2b1f0e9d8c7b6a5948372615049382716afbecd0123456789ab"
	for in, want := range map[string]string{
		"containerd://" + id: id,
		"cri-o://" + id:      id,
		"docker://" + id:     id,
		id:                   id,
		"":                   "",
	} {
		assert.Equal(t, want, RuntimeContainerID(in), "RuntimeContainerID(%q)", in)
	}
}

// TestPodFromAPI covers the mapping of one API pod without an API server.
func TestPodFromAPI(t *testing.T) {
	in := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid", Labels: map[string]string{"a": "1"},
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "DaemonSet", "agent", "u")}},
		Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c", Image: "img:2"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "c", ContainerID: "containerd://abc"},
			{Name: "waiting"},
		}},
	}
	p := podFromAPI(in)
	assert.Equal(t, "uid", p.UID)
	assert.Equal(t, "n", p.NodeName)
	assert.Equal(t, []Container{{ID: "abc", Name: "c", ImageName: "img", ImageTag: "2"}}, p.Containers)
	assert.Equal(t, &Owner{Kind: "DaemonSet", Name: "agent"}, p.ownerRef)
}

func TestNewCacheNeedsANode(t *testing.T) {
	_, err := NewCache(nil, "")
	assert.ErrorContains(t, err, "node name is empty")
}

// kubeFixture writes the objects a kubelet and controllers would.
type kubeFixture struct {
	cs kubernetes.Interface
	n  atomic.Int64
}

// namespace creates a namespace for one test, with the default service
// account that pod admission wants (no controller-manager creates it).
func (k *kubeFixture) namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("vigil-%d", k.n.Add(1))
	_, err := k.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = k.cs.CoreV1().ServiceAccounts(name).Create(t.Context(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

func (k *kubeFixture) build(ns, name, node string, owners []metav1.OwnerReference, containers ...string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: owners},
		Spec:       corev1.PodSpec{NodeName: node},
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "busybox:1.37"})
	}
	return pod
}

func (k *kubeFixture) create(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := k.cs.CoreV1().Pods(pod.Namespace).Create(t.Context(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

func (k *kubeFixture) pod(t *testing.T, ns, name, node string, owners []metav1.OwnerReference, containers ...string) *corev1.Pod {
	t.Helper()
	return k.create(t, k.build(ns, name, node, owners, containers...))
}

// setStatus reports ids (container name -> id, with or without a
// runtime scheme) as the kubelet does once the runtime started them.
func (k *kubeFixture) setStatus(t *testing.T, pod *corev1.Pod, ids map[string]string) *corev1.Pod {
	t.Helper()
	pod = pod.DeepCopy()
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		id, ok := ids[c.Name]
		if !ok {
			continue
		}
		if RuntimeContainerID(id) == id {
			id = "containerd://" + id
		}
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, status(c.Name, c.Image, id))
	}
	out, err := k.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	return out
}

func status(name, image, id string) corev1.ContainerStatus {
	s := corev1.ContainerStatus{Name: name, Image: image, ImageID: image, ContainerID: id}
	if id != "" {
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
	} else {
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return s
}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox:1.37"}}},
	}
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes}
}

// containerID is a runtime id (64 hex digits) unique to the test and seed.
func containerID(t *testing.T, seed string) string {
	sum := sha256.Sum256([]byte(t.Name() + "/" + seed))
	return hex.EncodeToString(sum[:])
}

// waitPod waits for the cache to know container id.
func waitPod(t *testing.T, c *Cache, id string) *Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	p, _, ok := c.WaitForContainer(ctx, id)
	if !ok {
		t.Fatalf("container %s not in the cache within %s", id[:12], eventually)
	}
	return p
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
