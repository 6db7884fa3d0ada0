package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// policyDetail is the dashboard of one policy: how often its hooks run,
// how much its selectors keep, what it posts, counts and kills, where.
func policyDetail() *dashboard.DashboardBuilder {
	hooks := sel + ", " + namespace + ", " + policy
	return newDashboard("vigil-policy", "Vigil / Policy",
		"One TracingPolicy: calls of its hooks in the kernel, what its selectors matched, events, rate limiting, signals, and the kernel's counts (Count action) by workload.").
		WithVariable(namespaceVariable()).
		WithVariable(queryVariable("policy", "Policy", `label_values(vigil_policy_hook_hits_total{job=~"$job"}, security_rule_name)`)).
		WithPanel(single("Hook calls", "Calls of the policy's hooks per second in the kernel, before its selectors.", perSecond, nil,
			query{`sum(` + rate("vigil_policy_hook_hits_total", hooks) + `)`, "calls"})).
		WithPanel(single("Selector matches", "Calls the policy's selectors matched per second.", perSecond, nil,
			query{`sum(` + rate("vigil_policy_hook_matches_total", hooks) + `)`, "matches"})).
		WithPanel(single("Events", "Events the policy posted per second.", perSecond, nil,
			query{`sum(` + rate("vigil_events_total", sel+", "+policy) + `)`, "events"})).
		WithPanel(single("Kernel signals", "Signals the policy's Sigkill and Signal actions sent per second.", perSecond, nil,
			query{`sum(` + rate("vigil_policy_hook_signals_total", hooks) + `)`, "signals"})).
		WithRow(dashboard.NewRowBuilder("Hooks")).
		WithPanel(graph("Hook calls by hook",
			"Calls of each of the policy's hooks per second in the kernel, before any selector: the cost of the policy is proportional to these.",
			perSecond,
			query{`sum by (vigil_hook) (` + rate("vigil_policy_hook_hits_total", hooks) + `)`, "{{vigil_hook}}"})).
		WithPanel(graph("Selector matches by hook",
			"Calls of each hook that a selector matched per second.",
			perSecond,
			query{`sum by (vigil_hook) (` + rate("vigil_policy_hook_matches_total", hooks) + `)`, "{{vigil_hook}}"})).
		WithPanel(graph("Share of calls matched by hook",
			"Matches over calls, by hook: what the in-kernel filter lets through. Near 0 is a selective policy; near 1, every call of the hook matches.",
			fraction,
			query{`sum by (vigil_hook) (` + rate("vigil_policy_hook_matches_total", hooks) + `) / (sum by (vigil_hook) (` + rate("vigil_policy_hook_hits_total", hooks) + `) > 0)`, "{{vigil_hook}}"}).
			Max(1)).
		WithPanel(graph("Rate-limited and signals by hook",
			"Matched calls per second a selector's rateLimit kept from posting, and signals sent by Sigkill and Signal actions, by hook.",
			perSecond,
			query{`sum by (vigil_hook) (` + rate("vigil_policy_hook_rate_limited_total", hooks) + `)`, "{{vigil_hook}} rate-limited"},
			query{`sum by (vigil_hook) (` + rate("vigil_policy_hook_signals_total", hooks) + `)`, "{{vigil_hook}} signals"})).
		WithRow(dashboard.NewRowBuilder("Events and counts")).
		WithPanel(graph("Events by node",
			"Events the policy posted per second, by node and event name.",
			perSecond,
			query{`sum by (instance, event_name) (` + rate("vigil_events_total", sel+", "+policy) + `)`, "{{instance}} {{event_name}}"})).
		WithPanel(graph("In-kernel counts by workload",
			"Matches the kernel counted per second for the policy's selectors with the Count action, by workload (the pod's owner, else the pod, the container, or (host)).",
			perSecond,
			query{`sum by (k8s_namespace_name, workload) (` + workload(rate("vigil_policy_counts_total", hooks)) + `)`, "{{k8s_namespace_name}} {{workload}}"})).
		WithPanel(ranking("Top workloads",
			"In-kernel counts of the policy by workload and pod over the dashboard's time range, most first.",
			`topk(10, sum by (k8s_namespace_name, workload, k8s_pod_name) (`+workload(`increase(vigil_policy_counts_total{`+hooks+`}[$__range])`)+`))`))
}
