package engine

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
)

// Counters is what the engine and the kernel counted, read at one moment:
// cumulative since the engine started (Engine.Started), and for a policy's
// hooks since its running version was installed.
type Counters struct {
	// Exec and Exit count process.exec and process.exit events.
	Exec, Exit uint64
	// PolicyEvents counts policy events by name, policy and binary.
	PolicyEvents map[PolicyEventKey]uint64
	Lost         Lost
	// Programs are the kernel's counts of the sensor's programs, by name.
	Programs map[string]kernel.ProgramStats
	// Requests counts GetUrl and DnsLookup requests by action and result.
	Requests map[string]map[string]uint64
	// PoliciesRunning and PolicyRefusals: policies running now, and
	// refusals so far.
	PoliciesRunning int
	PolicyRefusals  uint64
	// Maps is the fill of the kernel's bounded maps, by name.
	Maps map[string]kernel.MapFill
	// Processes is the size of the process cache.
	Processes int
	// CountOverflow counts the Count action's matches the kernel could
	// not keep (its map full).
	CountOverflow uint64
	// Versions are the running policy versions, oldest first, each with
	// what its hooks counted since it was installed.
	Versions []Version
}

// Lost counts events lost, by reason.
type Lost struct {
	// RingBufferFull: the kernel found no room; ConsumerRefused: the
	// consumer returned an error; Undecodable: a record could not be
	// read; RateLimited: matched calls a selector's rateLimit held back.
	RingBufferFull, ConsumerRefused, Undecodable, RateLimited uint64
}

// Version is what one running policy version counted since Since.
type Version struct {
	Since  time.Time
	Hooks  []HookCount
	Counts []PolicyCount
}

// HookCount is the kernel's count of a policy's hooks on one call.
type HookCount struct {
	// Policy is the policy's name; Namespace, a TracingPolicyNamespaced's
	// namespace: two may share a name. Hook names the call (vigil.hook).
	Policy, Namespace, Hook string
	kernel.HookCounters
}

// PolicyCount is one series of the Count action: the matches of the
// selectors with the same actions on one call of one policy, in one
// container (empty: the host's cgroups).
type PolicyCount struct {
	Policy, Namespace, Hook string
	// Action is what the kernel does besides counting (countedAction).
	Action    string
	Container string
	N         uint64
}

// PolicyEventKey is what policy events are counted by: the binary is what
// the top binaries of a dashboard need.
type PolicyEventKey struct{ Name, Policy, Binary string }

// maxPolicyEventSeries bounds the series of policy events: a policy that
// matches every binary of a busy node must not grow the counters without
// end. Past it, new binaries count under OtherBinaries.
const maxPolicyEventSeries = 2048

// OtherBinaries is the binary of the policy events counted past
// maxPolicyEventSeries.
const OtherBinaries = "(other)"

type hookEvents struct {
	mu sync.Mutex
	n  map[PolicyEventKey]uint64
}

func (h *hookEvents) count(name, policy, binary string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[PolicyEventKey]uint64{}
	}
	k := PolicyEventKey{name, policy, binary}
	if _, ok := h.n[k]; !ok && len(h.n) >= maxPolicyEventSeries {
		k.Binary = OtherBinaries
	}
	h.n[k]++
}

func (h *hookEvents) snapshot() map[PolicyEventKey]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.n)
}

// Counters reads the counters. A kernel counter that cannot be read is
// logged and left out; the others are still read.
func (e *Engine) Counters() Counters {
	c := Counters{
		Exec:         e.stats.exec.Load(),
		Exit:         e.stats.exit.Load(),
		PolicyEvents: e.stats.hooks.snapshot(),
		Requests:     e.requests.Counts(),
		Processes:    e.cache.Len(),
	}
	warn := func(what string, err error) {
		if err != nil {
			e.logger.Warn("reading "+what, zap.Error(err))
		}
	}
	hooks, rateLimited, err := e.policies.hookCounts()
	warn("the policy hooks' kernel counters", err)
	for _, h := range hooks {
		rateLimited += h.RateLimited
	}
	drops, err := e.sensor.Drops()
	warn("kernel drop counters", err)
	c.Lost = Lost{RingBufferFull: drops, ConsumerRefused: e.stats.consumerRefused.Load(),
		Undecodable: e.stats.undecodable.Load(), RateLimited: rateLimited}
	c.Programs, err = e.sensor.ProgramStats()
	warn("the kernel's counts of Vigil's programs", err)
	c.PoliciesRunning, c.PolicyRefusals = e.policies.counts()
	c.Maps, err = e.sensor.MapFill()
	warn("the fill of the kernel's maps", err)
	counts, overflow, err := e.sensor.PolicyCounts()
	warn("the Count action's kernel counters", err)
	c.CountOverflow = overflow

	perCgroup := e.policies.policyCounts(counts)
	cgroups := make([]uint64, 0, len(perCgroup))
	for _, pc := range perCgroup {
		cgroups = append(cgroups, pc.cgroup)
	}
	// A container's sub-cgroups are one series; the host's cgroups are
	// one, without a container.
	containers := e.cgroups.Containers(cgroups)
	versions := map[time.Time]*Version{}
	versionAt := func(since time.Time) *Version {
		v := versions[since]
		if v == nil {
			v = &Version{Since: since}
			versions[since] = v
		}
		return v
	}
	for _, h := range hooks {
		v := versionAt(h.since)
		v.Hooks = append(v.Hooks, h.HookCount)
	}
	type seriesKey struct {
		since                                      time.Time
		policy, namespace, hook, action, container string
	}
	at := map[seriesKey]int{}
	for _, pc := range perCgroup {
		v := versionAt(pc.since)
		k := seriesKey{pc.since, pc.policy, pc.namespace, pc.hook, pc.action, containers[pc.cgroup]}
		i, ok := at[k]
		if !ok {
			i, at[k] = len(v.Counts), len(v.Counts)
			v.Counts = append(v.Counts, PolicyCount{Policy: k.policy, Namespace: k.namespace, Hook: k.hook, Action: k.action, Container: k.container})
		}
		v.Counts[i].N += pc.n
	}
	for _, since := range slices.SortedFunc(maps.Keys(versions), time.Time.Compare) {
		c.Versions = append(c.Versions, *versions[since])
	}
	return c
}

// hookCount is a HookCount of the version installed at since.
type hookCount struct {
	HookCount
	since time.Time
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
			call := ih.Hook.Target()
			i, ok := at[call]
			if !ok {
				i, at[call] = len(out), len(out)
				meta := ih.Program.Policy.Metadata
				out = append(out, hookCount{HookCount: HookCount{Policy: meta.Name, Namespace: meta.Namespace, Hook: call}, since: r.since})
			}
			out[i].Add(c)
		}
	}
	return out, m.rateLimitedGone, errors.Join(errs...)
}

// policyCount is one series of the Count action's counters: the matches of
// the selectors with the same actions on one call of one policy, in one
// cgroup.
type policyCount struct {
	policy, namespace, hook, action string
	cgroup                          uint64
	since                           time.Time
	n                               uint64
}

// policyCounts names the kernel's Count counters by policy, hook and the
// selector's actions, keeping those of the running versions: the counters
// of a version replaced start over with its successor, as its hooks' do.
func (m *policyManager) policyCounts(counts []kernel.PolicyCount) []policyCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	type version struct {
		r  *runningPolicy
		ih *kernel.InstalledHook
	}
	hooks := map[uint32]version{}
	for _, r := range m.running {
		for _, ih := range r.hooks.Hooks {
			hooks[ih.ID] = version{r, ih}
		}
	}
	type seriesKey struct {
		name, namespace, hook, action string
		cgroup                        uint64
	}
	at := map[seriesKey]int{}
	var out []policyCount
	for _, c := range counts {
		v, ok := hooks[c.Hook]
		if !ok || int(c.Selector) >= len(v.ih.Hook.Selectors) {
			continue
		}
		meta := v.ih.Program.Policy.Metadata
		call := v.ih.Hook.Target()
		k := seriesKey{meta.Name, meta.Namespace, call, countedAction(&v.ih.Hook.Selectors[c.Selector]), c.Cgroup}
		i, ok := at[k]
		if !ok {
			i, at[k] = len(out), len(out)
			out = append(out, policyCount{policy: k.name, namespace: k.namespace, hook: k.hook, action: k.action, cgroup: k.cgroup, since: v.r.since})
		}
		out[i].n += c.N
	}
	return out
}

// countedAction names what the kernel does, besides counting, when a
// counting selector matches, as a hook event's vigil.action does: in
// monitor mode a Sigkill selector posts. "NoPost" for one that only counts.
func countedAction(sel *policy.Selector) string {
	switch {
	case sel.Signal == uint32(unix.SIGKILL):
		return "Sigkill"
	case sel.Signal != 0:
		return "Signal"
	case sel.Override || sel.Deny:
		return "Override"
	case !sel.Post:
		return "NoPost"
	}
	return "Post"
}
