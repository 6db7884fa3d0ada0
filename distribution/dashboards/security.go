package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// security is the dashboard of what the policies saw and did: hits by
// policy and namespace, the kernel's own counts by workload, enforcement.
func security() *dashboard.DashboardBuilder {
	counts := sel + ", " + namespace
	return newDashboard("vigil-security", "Vigil / Security",
		"What Vigil's policies matched and did: events and selector matches by policy and namespace, the kernel's counts (Count action) by workload, and enforcement by rule and policy.").
		WithVariable(namespaceVariable()).
		WithPanel(single("Policy events", "Events policies posted per second.", perSecond, nil,
			query{`sum(` + rate("vigil_events_total", sel+`, security_rule_name!=""`) + `)`, "events"})).
		WithPanel(single("Selector matches", "Calls a policy's selectors matched in the kernel per second, posted or not.", perSecond, nil,
			query{`sum(` + rate("vigil_policy_hook_matches_total", counts) + `)`, "matches"})).
		WithPanel(single("Enforcement actions", "Actions of the enforcement processor's rules per second (taken, skipped in monitor mode, failed). No data: no enforcement processor in the pipeline (README \"Enforcement\").", perSecond, nil,
			query{`sum(` + rate("otelcol_processor_enforcement_actions", sel) + `)`, "actions"})).
		WithPanel(single("Kernel signals", "Signals policies' Sigkill and Signal actions sent in the kernel per second.", perSecond, nil,
			query{`sum(` + rate("vigil_policy_hook_signals_total", counts) + `)`, "signals"})).
		WithRow(dashboard.NewRowBuilder("Policy hits")).
		WithPanel(graph("Policy events by policy",
			"Events each policy posted per second (what reaches the pipeline and the exporters).",
			perSecond,
			query{`sum by (security_rule_name) (` + rate("vigil_events_total", sel+`, security_rule_name!=""`) + `)`, "{{security_rule_name}}"})).
		WithPanel(graph("Selector matches by policy",
			"Calls each policy's selectors matched in the kernel per second, whether the action posts, counts, signals or drops.",
			perSecond,
			query{`sum by (security_rule_name) (` + rate("vigil_policy_hook_matches_total", counts) + `)`, "{{security_rule_name}}"})).
		WithPanel(graph("Selector matches by namespace",
			"Selector matches per second by the namespace of the policy: a TracingPolicyNamespaced's own, (cluster-wide) for a TracingPolicy.",
			perSecond,
			query{`sum by (k8s_namespace_name) (` + orNone("k8s_namespace_name", "(cluster-wide)", rate("vigil_policy_hook_matches_total", counts)) + `)`, "{{k8s_namespace_name}}"})).
		WithPanel(graph("Matched calls rate-limited by policy",
			"Matched calls per second that a selector's rateLimit kept from posting, by policy (counted in Events lost as rate_limited, on purpose).",
			perSecond,
			query{`sum by (security_rule_name) (` + rate("vigil_policy_hook_rate_limited_total", counts) + `)`, "{{security_rule_name}}"})).
		WithPanel(ranking("Top policies",
			"Selector matches of each policy over the dashboard's time range, most first.",
			`topk(10, sum by (security_rule_name) (increase(vigil_policy_hook_matches_total{`+counts+`}[$__range])))`)).
		WithPanel(ranking("Top binaries",
			"Policy events of each program and policy over the dashboard's time range, most first: the programs whose calls the policies reported.",
			`topk(10, sum by (process_executable_path, security_rule_name) (increase(vigil_events_total{`+sel+`, security_rule_name!=""}[$__range])))`)).
		WithRow(dashboard.NewRowBuilder("In-kernel counts (Count action)")).
		WithPanel(graph("In-kernel counts by policy",
			"Matches the kernel counted per second for selectors with the Count action, by policy: counted per cgroup in the kernel, never sent as events.",
			perSecond,
			query{`sum by (security_rule_name) (` + rate("vigil_policy_counts_total", counts) + `)`, "{{security_rule_name}}"})).
		WithPanel(graph("In-kernel counts by namespace",
			"In-kernel counts per second by the namespace of the pod counted; (none) for processes outside pods.",
			perSecond,
			query{`sum by (k8s_namespace_name) (` + orNone("k8s_namespace_name", "(none)", rate("vigil_policy_counts_total", counts)) + `)`, "{{k8s_namespace_name}}"})).
		WithPanel(graph("In-kernel counts by workload",
			"In-kernel counts per second by workload: the pod's owner (deployment, daemonset, statefulset, cronjob, job), else the pod, else the container, else (host).",
			perSecond,
			query{`sum by (k8s_namespace_name, workload) (` + workload(rate("vigil_policy_counts_total", counts)) + `)`, "{{k8s_namespace_name}} {{workload}}"}).
			Span(24)).
		WithPanel(ranking("Top workloads",
			"In-kernel counts of each workload and policy over the dashboard's time range, most first.",
			`topk(10, sum by (k8s_namespace_name, workload, security_rule_name) (`+workload(`increase(vigil_policy_counts_total{`+counts+`}[$__range])`)+`))`)).
		WithRow(dashboard.NewRowBuilder("Enforcement")).
		WithPanel(graph("Enforcement actions by rule",
			"Actions of the enforcement processor per second, by rule, action and result: taken; skipped (monitor mode, rate limit); failed. A burst of taken actions raises VigilEnforcementActionsSpike. No data: no enforcement processor in the pipeline.",
			perSecond,
			query{`sum by (rule, action, result) (` + rate("otelcol_processor_enforcement_actions", sel) + `)`, "{{rule}} {{action}} {{result}}"})).
		WithPanel(graph("Kernel signals by policy",
			"Signals sent in the kernel per second by policies' Sigkill and Signal actions, by policy. A burst raises VigilEnforcementActionsSpike.",
			perSecond,
			query{`sum by (security_rule_name) (` + rate("vigil_policy_hook_signals_total", counts) + `)`, "{{security_rule_name}}"})).
		WithPanel(ranking("Top enforcement rules",
			"Actions of each enforcement rule over the dashboard's time range, most first.",
			`topk(10, sum by (rule, action, result) (increase(otelcol_processor_enforcement_actions{`+sel+`}[$__range])))`))
}

// orNone gives the series of expr without label (or with it empty) the
// value none, so that a legend names them.
func orNone(label, none, expr string) string {
	return fmt.Sprintf(`label_replace(%s, "%s", "%s", "%s", "")`, expr, label, none, label)
}

// workload adds a workload label to the series of expr: the owner the
// k8s_workload processor names, the most specific first (a deployment over
// its replicaset, a cronjob over its job), else the pod, else the first 12
// digits of the container's id, else (host).
func workload(expr string) string {
	e := orNone("workload", "(host)", expr)
	// Lowest precedence first: each later one overwrites.
	for _, w := range []struct{ label, kind, value string }{
		{"container_id", "container", "(.{1,12}).*"},
		{"k8s_pod_name", "pod", "(.+)"},
		{"k8s_replicaset_name", "replicaset", "(.+)"},
		{"k8s_job_name", "job", "(.+)"},
		{"k8s_statefulset_name", "statefulset", "(.+)"},
		{"k8s_daemonset_name", "daemonset", "(.+)"},
		{"k8s_cronjob_name", "cronjob", "(.+)"},
		{"k8s_deployment_name", "deployment", "(.+)"},
	} {
		e = fmt.Sprintf(`label_replace(%s, "workload", "%s/$1", "%s", "%s")`, e, w.kind, w.label, w.value)
	}
	return e
}
