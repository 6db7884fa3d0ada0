package ebpfreceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
)

// policyStatus is what the receiver knows of one policy from its sources.
type policyStatus = policy.Status

type runningPolicy struct {
	source  string
	content []byte
	hooks   *kernel.PolicyHooks
	// since is when this version was installed: its hooks' kernel
	// counters start there.
	since time.Time
	// scope is set for a pod-scoped policy: the pods whose cgroups the
	// kernel keeps in the policy's set.
	scope *k8s.Scope
}

// kubeSource is what the policy manager gets from Kubernetes, when the
// receiver names a k8s_metadata extension.
type kubeSource struct {
	pods    *k8s.Cache
	watcher *k8s.PolicyWatcher
	cgroups *k8s.CgroupIndex
}

// policyManager keeps the kernel's policies in step with the configured
// files and directories. Each policy loads on its own: one that fails to
// read, validate, compile or install is reported and leaves its running
// version, and every other policy, as they were.
type policyManager struct {
	sensor *kernel.Sensor
	logger *zap.Logger
	paths  []string
	kube   *kubeSource
	// statusFile is where `vigil policy status` reads the statuses; empty
	// for none. published is the last list written there.
	statusFile string
	published  []byte

	mu      sync.Mutex
	running map[string]*runningPolicy
	status  map[string]*policyStatus
	// refused holds the text of policies refused as they are now.
	refused map[string][]byte
	errors  uint64
	// rateLimitedGone counts the rate-limited calls of replaced and
	// removed versions, whose kernel counters went with them.
	rateLimitedGone uint64
}

func newPolicyManager(sensor *kernel.Sensor, logger *zap.Logger, paths []string, kube *kubeSource) *policyManager {
	return &policyManager{sensor: sensor, logger: logger, paths: paths, kube: kube,
		running: map[string]*runningPolicy{}, status: map[string]*policyStatus{}, refused: map[string][]byte{}}
}

// policyFiles lists the policy files under the configured paths: files as
// given, and the *.yaml and *.yml files of directories, sorted.
func policyFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

func policyKey(p *policy.TracingPolicy) string {
	if p.Metadata.Namespace != "" {
		return p.Metadata.Namespace + "/" + p.Metadata.Name
	}
	return p.Metadata.Name
}

// sync reads every policy source and brings the kernel in line: new
// policies are installed, changed ones replaced, vanished ones removed.
func (m *policyManager) sync() {
	m.mu.Lock()
	defer m.mu.Unlock()
	files, err := policyFiles(m.paths)
	if err != nil {
		// A path that vanished for a moment (an editor's rename, a
		// ConfigMap update) must not unload everything.
		m.logger.Warn("cannot list policy sources; keeping the running policies", zap.Error(err))
		return
	}
	seen := map[string]bool{}
	for _, file := range files {
		content, err := os.ReadFile(file)
		if err != nil {
			m.logger.Warn("cannot read policy file; keeping its running policies", zap.String("file", file), zap.Error(err))
			for name, r := range m.running {
				if r.source == file {
					seen[name] = true
				}
			}
			continue
		}
		policies, err := policy.Parse(content, file)
		if err != nil {
			m.fail(file, file, err)
			for name, r := range m.running {
				if r.source == file {
					seen[name] = true
				}
			}
			continue
		}
		for _, p := range policies {
			name := policyKey(p)
			seen[name] = true
			m.apply(name, file, p)
		}
	}
	if m.kube != nil {
		m.syncObjects(seen)
	}
	for name, r := range m.running {
		if seen[name] {
			continue
		}
		if err := m.sensor.RemovePolicy(r.hooks); err != nil {
			m.logger.Warn("removing policy", zap.String("policy", name), zap.Error(err))
		}
		m.retired(r.hooks)
		delete(m.running, name)
		delete(m.status, name)
		m.logger.Info("policy removed", zap.String("policy", name), zap.String("file", r.source))
	}
	for name := range m.status {
		if !seen[name] && m.running[name] == nil {
			delete(m.status, name)
			delete(m.refused, name)
		}
	}
	m.publish()
}

// publish writes the statuses to the status file when they changed. m.mu
// is held.
func (m *policyManager) publish() {
	if m.statusFile == "" {
		return
	}
	list := m.statusList()
	data, _ := json.Marshal(list)
	if bytes.Equal(data, m.published) {
		return
	}
	if err := policy.WriteStatusFile(m.statusFile, policy.StatusReport{Updated: time.Now().UTC(), Policies: list}); err != nil {
		m.logger.Warn("`vigil policy status` will not see the policies", zap.Error(err))
		return
	}
	m.published = data
}

// syncObjects applies the cluster's TracingPolicy objects. A file policy
// of the same name wins: two sources fighting over one name would replace
// each other on every sync.
func (m *policyManager) syncObjects(seen map[string]bool) {
	for _, obj := range m.kube.watcher.Objects() {
		policies, err := policy.Parse(obj.YAML, obj.Source)
		if err != nil || len(policies) != 1 {
			if err == nil {
				err = fmt.Errorf("%d policies in one object", len(policies))
			}
			m.fail(obj.Source, obj.Source, err)
			for name, r := range m.running {
				if r.source == obj.Source {
					seen[name] = true
				}
			}
			continue
		}
		p := policies[0]
		name := policyKey(p)
		if r := m.running[name]; seen[name] && r != nil && r.source != obj.Source {
			m.fail(obj.Source, obj.Source, fmt.Errorf("metadata.name: policy %q is already loaded from %s", name, r.source))
			continue
		}
		seen[name] = true
		m.apply(name, obj.Source, p)
	}
}

// refreshScopes brings the cgroup sets of the pod-scoped policies in line
// with the pods of the node, after a pod came, changed or went.
func (m *policyManager) refreshScopes() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, r := range m.running {
		if r.scope == nil {
			continue
		}
		if err := m.sensor.SetPolicyCgroups(r.hooks, m.scopeCgroups(name, r.scope)); err != nil {
			m.logger.Warn("updating the pods of a policy", zap.String("policy", name), zap.Error(err))
		}
	}
}

// scopeCgroups returns the cgroup ids of the containers scope selects now.
func (m *policyManager) scopeCgroups(name string, scope *k8s.Scope) []uint64 {
	ids, missing := m.kube.cgroups.Lookup(scope.ContainerIDs(m.kube.pods.Pods()))
	if len(missing) > 0 {
		// The runtime creates the cgroup before it reports the container
		// id, so this is a cgroup from elsewhere (another mount
		// namespace, a runtime Vigil cannot parse); the next refresh
		// looks again.
		m.logger.Debug("containers of a policy's pods have no cgroup here yet",
			zap.String("policy", name), zap.Strings("containers", missing))
	}
	return ids
}

// apply installs one policy read from file, unless the same text runs.
func (m *policyManager) apply(name, file string, p *policy.TracingPolicy) {
	content, err := json.Marshal(p)
	if err != nil {
		m.fail(name, file, err)
		return
	}
	r := m.running[name]
	if r != nil && r.source == file && bytes.Equal(r.content, content) {
		return
	}
	if bytes.Equal(m.refused[name], content) {
		return // refused as it is; it is retried when it changes
	}
	err = policy.Validate(p)
	if err == nil {
		err = policy.Supported(p)
	}
	var scope *k8s.Scope
	if err == nil && policy.PodScoped(p) {
		if m.kube == nil {
			err = &policy.FieldError{Path: podScopePath(p),
				Reason: "selects pods, which needs Kubernetes metadata: set the ebpf receiver's k8s_metadata to a k8s_metadata extension"}
		} else {
			scope, err = k8s.NewScope(p)
		}
	}
	var prog *policy.Program
	if err == nil {
		prog, err = policy.Compile(p)
	}
	var hooks *kernel.PolicyHooks
	if err == nil {
		var old *kernel.PolicyHooks
		if r != nil {
			old = r.hooks
		}
		if scope != nil {
			hooks, err = m.sensor.InstallScopedPolicy(prog, old, m.scopeCgroups(name, scope))
		} else {
			hooks, err = m.sensor.InstallPolicy(prog, old)
		}
	}
	if err != nil {
		m.refused[name] = content
		m.fail(name, file, err)
		return
	}
	delete(m.refused, name)
	verb := "policy loaded"
	if r != nil {
		verb = "policy replaced"
		m.retired(r.hooks)
	}
	m.running[name] = &runningPolicy{source: file, content: content, hooks: hooks, since: time.Now(), scope: scope}
	st := &policyStatus{Name: name, Source: file, Running: true, Mode: policy.Mode(p)}
	for _, h := range hooks.Hooks {
		st.Hooks = append(st.Hooks, policy.HookStatus{Path: h.Hook.Path, Mechanism: h.Mechanism})
	}
	m.status[name] = st
	m.logger.Info(verb, zap.String("policy", name), zap.String("file", file),
		zap.Int("hooks", len(hooks.Hooks)), zap.String("mode", policy.Mode(p)))
}

// podScopePath is the field that makes p pod-scoped, for errors.
func podScopePath(p *policy.TracingPolicy) string {
	switch {
	case p.Spec.PodSelector != nil:
		return "spec.podSelector"
	case p.Spec.ContainerSelector != nil:
		return "spec.containerSelector"
	}
	return "kind"
}

func (m *policyManager) fail(name, file string, err error) {
	st := m.status[name]
	msg := err.Error()
	if st != nil && st.Error == msg {
		return // already reported
	}
	m.errors++
	if st == nil || !st.Running {
		st = &policyStatus{Name: name, Source: file}
	}
	// The running version's mode and hooks stay: they still run.
	st.Error = msg
	m.status[name] = st
	_, running := m.running[name]
	fields := []zap.Field{zap.String("policy", name), zap.String("file", file), zap.Error(err)}
	if running {
		m.logger.Error("policy refused; its previous version keeps running", fields...)
	} else {
		m.logger.Error("policy refused", fields...)
	}
}

// statuses returns the state of every policy, sorted by name.
func (m *policyManager) statuses() []policyStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusList()
}

func (m *policyManager) statusList() []policyStatus {
	out := make([]policyStatus, 0, len(m.status))
	for _, st := range m.status {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// hookCount is the kernel's count of one running hook (kernel.HookCounters).
type hookCount struct {
	// policy is the policy's name; namespace, a TracingPolicyNamespaced's
	// namespace: two may share a name.
	policy, namespace, hook string
	since                   time.Time
	kernel.HookCounters
}

// hookCounts returns the kernel's counters of every running hook, and the
// rate-limited calls of the versions that no longer run.
func (m *policyManager) hookCounts() ([]hookCount, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []hookCount
	var errs []error
	for _, r := range m.running {
		// Hooks of one policy on the same call are one series.
		at := map[string]int{}
		for _, ih := range r.hooks.Hooks {
			if ih.Mechanism == kernel.MechanismNotFound {
				continue
			}
			c, err := m.sensor.Counters(ih)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			_, call := hookNames(ih.Hook)
			i, ok := at[call]
			if !ok {
				i, at[call] = len(out), len(out)
				meta := ih.Program.Policy.Metadata
				out = append(out, hookCount{policy: meta.Name, namespace: meta.Namespace, hook: call, since: r.since})
			}
			out[i].Add(c)
		}
	}
	return out, m.rateLimitedGone, errors.Join(errs...)
}

// retired keeps the rate-limited count of a version just replaced or
// removed: its hooks no longer run, and their counters go when the kernel
// reuses their slots. m.mu is held.
func (m *policyManager) retired(ph *kernel.PolicyHooks) {
	for _, ih := range ph.Hooks {
		if ih.Mechanism == kernel.MechanismNotFound {
			continue
		}
		if c, err := m.sensor.Counters(ih); err == nil {
			m.rateLimitedGone += c.RateLimited
		}
	}
}

// counts returns how many policies run and how many refusals there were.
func (m *policyManager) counts() (running int, refusals uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.running), m.errors
}
