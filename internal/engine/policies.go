package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/k8s"
	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
)

// policyStatus is what the engine knows of one policy from its sources.
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

// kubeSource is what the policy manager gets from Kubernetes (Options.Kube).
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
	// syncs counts the passes of sync, done or given up: a test waits for
	// passes rather than for a time that might not hold one.
	syncs atomic.Uint64
	paths []string
	kube  *kubeSource
	// library are the library policies to load, after every other source.
	library []LibraryPolicy
	// statusFile is where `vigil policy status` reads the statuses; empty
	// for none. published is the last list written there.
	statusFile string
	published  []byte
	publishErr string

	mu      sync.Mutex
	running map[string]*runningPolicy
	status  map[string]*policyStatus
	// refused holds the text of policies refused as they are now.
	refused map[string][]byte
	// sources holds what each source held when last read.
	sources map[string]*parsedSource
	// shadowed holds the policies refused because an earlier source
	// has their name.
	shadowed map[shadowKey]*policyStatus
	errors   uint64
	// modes are the modes `vigil policy mode` set, by policy name;
	// modesErr the last error reading them, logged once.
	modes    policy.Modes
	modesErr string
	// rateLimitedGone counts the rate-limited calls of replaced and
	// removed versions, whose kernel counters went with them.
	rateLimitedGone uint64
}

func newPolicyManager(sensor *kernel.Sensor, logger *zap.Logger, paths []string, kube *kubeSource) *policyManager {
	return &policyManager{sensor: sensor, logger: logger, paths: paths, kube: kube,
		running: map[string]*runningPolicy{}, status: map[string]*policyStatus{}, refused: map[string][]byte{},
		sources: map[string]*parsedSource{}}
}

func policyKey(p *policy.TracingPolicy) string {
	if p.Metadata.Namespace != "" {
		return p.Metadata.Namespace + "/" + p.Metadata.Name
	}
	return p.Metadata.Name
}

// parsedSource is what a source (a file, a cluster object) held when its
// bytes were last read. A source is parsed again only when its bytes
// change, so an unchanged source can neither reload nor be refused again.
type parsedSource struct {
	data     []byte
	policies []parsedPolicy
	err      error
}

type parsedPolicy struct {
	name   string
	policy *policy.TracingPolicy
	// content is the policy in one canonical form: a running version is
	// replaced only when this changes.
	content []byte
}

// candidate is a policy offered by a source, in the order sources take
// precedence. p is nil for a name whose source cannot be read or parsed
// now: its running version keeps the name.
type candidate struct {
	name, source string
	p            *parsedPolicy
	// library marks a policy of the library: another source's policy of
	// its name replaces it, which is no error.
	library bool
}

// shadowKey names a policy refused because an earlier source has its
// name; one name may be shadowed in several sources.
type shadowKey struct{ name, source string }

// parse returns what source holds, parsing data only when it differs from
// the bytes read last time. A cluster object holds exactly one policy.
func (m *policyManager) parse(source string, data []byte, object bool) *parsedSource {
	if ps := m.sources[source]; ps != nil && bytes.Equal(ps.data, data) {
		return ps
	}
	ps := &parsedSource{data: data}
	m.sources[source] = ps
	policies, err := policy.Parse(data, source)
	if err == nil && object && len(policies) != 1 {
		err = fmt.Errorf("%d policies in one object", len(policies))
	}
	if err != nil {
		ps.err = err
		return ps
	}
	for _, p := range policies {
		content, err := json.Marshal(p)
		if err != nil {
			ps.err, ps.policies = err, nil
			return ps
		}
		ps.policies = append(ps.policies, parsedPolicy{name: policyKey(p), policy: p, content: content})
	}
	return ps
}

// enforce switches the policies of a parsed library source to policy-mode
// enforce; a source already switched is left as it is.
func enforce(ps *parsedSource) {
	for i := range ps.policies {
		p := ps.policies[i].policy
		if policy.Mode(p) == policy.ModeEnforce {
			continue
		}
		policy.SetMode(p, policy.ModeEnforce)
		content, err := json.Marshal(p)
		if err != nil {
			ps.err, ps.policies = err, nil
			return
		}
		ps.policies[i].content = content
	}
}

// candidates returns what a source offers. A source that cannot be read
// or parsed is refused (once per error), and the names its running
// versions hold stay held: a broken save must neither unload a policy nor
// hand its name to a later source.
func (m *policyManager) candidates(source string, ps *parsedSource, err error) []candidate {
	if err == nil {
		out := make([]candidate, len(ps.policies))
		for i := range ps.policies {
			out[i] = candidate{name: ps.policies[i].name, source: source, p: &ps.policies[i]}
		}
		return out
	}
	m.fail(source, source, err)
	var out []candidate
	for name, r := range m.running {
		if r.source == source {
			out = append(out, candidate{name: name, source: source})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// sync reads every policy source and brings the kernel in line: new
// policies are installed, changed ones replaced, vanished ones removed.
//
// Sources take precedence in order: the configured paths as listed (a
// directory's files sorted by name), then the cluster's objects. Where two
// define a policy of one name, the first loads and the others are refused
// naming it, so each state of the sources has one outcome however often
// it is read.
func (m *policyManager) sync() {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.syncs.Add(1)
	files, err := policy.SourceFiles(m.paths)
	if err != nil {
		// A path that vanished for a moment (an editor's rename, a
		// ConfigMap update) must not unload everything.
		m.logger.Warn("cannot list policy sources; keeping the running policies", zap.Error(fmt.Errorf("policies: %w", err)))
		return
	}
	var cands []candidate
	// failed holds the sources refused as a whole: their statuses stay.
	failed := map[string]bool{}
	read := map[string]bool{}
	offer := func(source string, ps *parsedSource, err error) {
		read[source] = true
		if err == nil {
			err = ps.err
		}
		if err != nil {
			failed[source] = true
		}
		cands = append(cands, m.candidates(source, ps, err)...)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			offer(file, nil, fmt.Errorf("cannot read the policy file: %w", err))
			continue
		}
		offer(file, m.parse(file, data, false), nil)
	}
	if m.kube != nil {
		for _, obj := range m.kube.watcher.Objects() {
			offer(obj.Source, m.parse(obj.Source, obj.YAML, true), nil)
		}
	}
	for _, lp := range m.library {
		ps := m.parse(lp.Source, lp.Data, false)
		if lp.Enforce {
			enforce(ps)
		}
		n := len(cands)
		offer(lp.Source, ps, nil)
		for i := n; i < len(cands); i++ {
			cands[i].library = true
		}
	}
	for source := range m.sources {
		if !read[source] {
			delete(m.sources, source)
		}
	}
	m.applyModes(cands)
	m.reconcile(cands, failed)
	m.publish()
}

// applyModes gives the candidates the modes `vigil policy mode` set (the
// modes file beside the status file). The parsed policy a source holds is
// left as read: a mode cleared later must find the source's own. A modes
// file that cannot be read keeps the modes read last. m.mu is held.
func (m *policyManager) applyModes(cands []candidate) {
	if m.statusFile == "" {
		return
	}
	modes, err := policy.ReadModes(policy.ModesFile(m.statusFile))
	switch {
	case err != nil && err.Error() != m.modesErr:
		m.modesErr = err.Error()
		m.logger.Error("policy modes file unreadable; keeping the modes read before", zap.Error(err))
	case err == nil:
		m.modes, m.modesErr = modes, ""
	}
	for i := range cands {
		c := &cands[i]
		mode, ok := m.modes[c.name]
		if !ok || c.p == nil || policy.Mode(c.p.policy) == mode {
			continue
		}
		var p policy.TracingPolicy
		if err := json.Unmarshal(c.p.content, &p); err != nil {
			continue // content is json.Marshal's own output
		}
		policy.SetMode(&p, mode)
		content, err := json.Marshal(&p)
		if err != nil {
			continue
		}
		c.p = &parsedPolicy{name: c.p.name, policy: &p, content: content}
	}
}

// reconcile loads the first candidate of each name and refuses the others;
// running policies no candidate names are removed. m.mu is held.
func (m *policyManager) reconcile(cands []candidate, failed map[string]bool) {
	winners := map[string]candidate{}
	shadowed := map[shadowKey]*policyStatus{}
	for _, c := range cands {
		if w, taken := winners[c.name]; taken {
			if !c.library {
				m.shadow(shadowed, c, w)
			}
			continue
		}
		winners[c.name] = c
		if c.p != nil {
			m.apply(c)
		}
	}
	m.shadowed = shadowed
	for name, r := range m.running {
		if _, ok := winners[name]; ok {
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
		if _, ok := winners[name]; !ok && !failed[name] {
			delete(m.status, name)
		}
	}
	for name := range m.refused {
		if _, ok := winners[name]; !ok {
			delete(m.refused, name)
		}
	}
}

// shadow refuses candidate c, whose name the earlier candidate w holds.
// The refusal is logged and counted once, not at every sync.
func (m *policyManager) shadow(next map[shadowKey]*policyStatus, c, w candidate) {
	var msg string
	if c.source == w.source {
		msg = fmt.Sprintf("metadata.name: %q is also the name of an earlier policy in %s, which takes the name; rename one of them", c.name, c.source)
	} else {
		msg = fmt.Sprintf("metadata.name: %q in %s is also the name of a policy in %s, which comes first and takes the name; rename one of them", c.name, c.source, w.source)
	}
	k := shadowKey{name: c.name, source: c.source}
	st := m.shadowed[k]
	if st == nil || st.Error != msg {
		st = &policyStatus{Name: c.name, Source: c.source, Error: msg}
		m.errors++
		m.logger.Error("policy refused", zap.String("policy", c.name), zap.String("file", c.source),
			zap.String("loaded_from", w.source), zap.String("error", msg))
	}
	next[k] = st
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
		// Tried again at every sync; said once per reason. The policies
		// run either way.
		if msg := err.Error(); msg != m.publishErr {
			m.publishErr = msg
			m.logger.Error("`vigil policy status` will not see the policies", zap.Error(err))
		}
		return
	}
	m.published, m.publishErr = data, ""
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

// apply installs the policy of c, unless the same text runs.
func (m *policyManager) apply(c candidate) {
	name, file, p, content := c.name, c.source, c.p.policy, c.p.content
	r := m.running[name]
	if r != nil && bytes.Equal(r.content, content) {
		st := m.status[name]
		if r.source != file {
			// The first of two identical copies went: the same text
			// goes on running, read from the other.
			r.source, st.Source = file, file
			m.logger.Info("policy now read from another source", zap.String("policy", name), zap.String("file", file))
		}
		// An edit back to the running text ends its refusal.
		st.Error = ""
		delete(m.refused, name)
		return
	}
	if bytes.Equal(m.refused[name], content) {
		return // refused as it is; it is retried when it changes
	}
	prog, err := policy.Load(p)
	var scope *k8s.Scope
	if err == nil && policy.PodScoped(p) {
		if m.kube == nil {
			err = &policy.FieldError{Path: podScopePath(p),
				Reason: "selects pods, which needs Kubernetes metadata: set the ebpf receiver's k8s_metadata to a k8s_metadata extension"}
		} else {
			scope, err = k8s.NewScope(p)
		}
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
	out := make([]policyStatus, 0, len(m.status)+len(m.shadowed))
	for _, st := range m.status {
		out = append(out, *st)
	}
	for _, st := range m.shadowed {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Source < out[j].Source
	})
	return out
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
