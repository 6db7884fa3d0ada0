package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// nodeHealth is the dashboard of the sensor itself: is it seeing
// everything, what does it cost, is anything it reports getting out.
func nodeHealth() *dashboard.DashboardBuilder {
	return newDashboard("vigil-node-health", "Vigil / Node health",
		"The Vigil sensor on each node: events, losses, BPF cost, kernel maps, policies, and the collector's pipeline and exporters.").
		WithRow(dashboard.NewRowBuilder("Events")).
		WithPanel(graph("Events by name",
			"Events the ebpf receiver emitted per second, by event name (process.exec, process.exit, and the hook events of policies).",
			perSecond,
			query{`sum by (event_name) (` + rate("vigil_events_total", sel) + `)`, "{{event_name}}"})).
		WithPanel(graph("Events lost by reason",
			"Events lost per second before reaching the pipeline. ring_buffer_full: the kernel found the ring buffer full; consumer_refused: the pipeline refused them; undecodable: a record Vigil could not read; rate_limited: matched calls a selector's rateLimit held back, on purpose. Any but rate_limited raises VigilEventsLost.",
			perSecond,
			query{`sum by (reason) (` + rate("vigil_events_lost_total", sel) + `)`, "{{reason}}"})).
		WithPanel(graph("Process cache",
			"Processes in the process cache (running or recently exited), by node.",
			count,
			query{`sum by (instance) (vigil_process_cache_size{` + sel + `})`, "{{instance}}"})).
		WithPanel(graph("Policy requests",
			"GetUrl and DnsLookup requests that policies' actions made per second, by action and result (done, failed, dropped).",
			perSecond,
			query{`sum by (vigil_action, result) (` + rate("vigil_policy_requests_total", sel) + `)`, "{{vigil_action}} {{result}}"})).
		WithRow(dashboard.NewRowBuilder("BPF programs and kernel maps")).
		WithPanel(graph("BPF run time by program",
			"CPU time Vigil's BPF programs spent in the kernel, as a share of one CPU, by program. Counted only while the kernel's BPF statistics are on (the ebpf receiver's bpf_stats, or sysctl kernel.bpf_stats_enabled=1): no series otherwise.",
			fraction,
			query{`sum by (bpf_program_name) (` + rate("vigil_bpf_run_time_seconds_total", sel) + `)`, "{{bpf_program_name}}"})).
		WithPanel(graph("BPF mean run time by program",
			"Mean time of one run of each of Vigil's BPF programs (run time over runs), while the kernel's BPF statistics are on.",
			seconds,
			query{`sum by (bpf_program_name) (` + rate("vigil_bpf_run_time_seconds_total", sel) + `) / (sum by (bpf_program_name) (` + rate("vigil_bpf_runs_total", sel) + `) > 0)`, "{{bpf_program_name}}"})).
		WithPanel(graph("BPF runs skipped by program",
			"Runs of Vigil's BPF programs the kernel skipped per second (another BPF program was running on that CPU), by program: each a possibly missed event or enforcement. Raises VigilBPFRunsSkipped.",
			perSecond,
			query{`sum by (bpf_program_name) (` + rate("vigil_bpf_skipped_runs_total", sel) + `)`, "{{bpf_program_name}}"})).
		WithPanel(threshold(graph("Kernel map fill",
			"Entries over capacity of the kernel maps that fill with the node's activity, the fullest node per map. Above 90% for 10 minutes raises VigilBPFMapNearlyFull; a full map refuses new entries.",
			fraction,
			query{`max by (bpf_map_name) (vigil_bpf_map_entries{` + sel + `} / vigil_bpf_map_capacity{` + sel + `})`, "{{bpf_map_name}}"}).
			Max(1), 0.9)).
		WithPanel(graph("In-kernel counters overflowed",
			"Matches of selectors with the Count action that found the policy_counts map full, per second: counted only here, without their policy or workload. The map's fill is in Kernel map fill.",
			perSecond,
			query{`sum by (instance) (` + rate("vigil_policy_counts_overflow_total", sel) + `)`, "{{instance}}"}).
			Span(24)).
		WithRow(dashboard.NewRowBuilder("Policies")).
		WithPanel(single("Policies loaded",
			"Policies running in the kernel, summed over the nodes chosen.",
			count, nil,
			query{`sum(vigil_policies_loaded{` + sel + `})`, "loaded"}).
			Height(8)).
		WithPanel(single("Policy refusals",
			"Policy versions refused since each collector started (invalid, unsupported, or a name another source already loads), summed over the nodes chosen. A refusal raises VigilPolicyRefused; `vigil policy status` names the policy.",
			count, cog.ToPtr(1.0),
			query{`sum(vigil_policies_refused_total{` + sel + `})`, "refused"}).
			Height(8)).
		WithPanel(graph("Policies by node",
			"Policies loaded, and refusals since start, on each node.",
			count,
			query{`sum by (instance) (vigil_policies_loaded{` + sel + `})`, "{{instance}} loaded"},
			query{`sum by (instance) (vigil_policies_refused_total{` + sel + `})`, "{{instance}} refused"})).
		WithRow(dashboard.NewRowBuilder("Collector pipeline and exporters")).
		WithPanel(graph("Exporter send failures",
			"Log records and metric points the collector's exporters failed to send per second, by exporter; 0 for an exporter that sends and has never failed (the collector has no failure series for it until it fails). Lasting failures raise VigilExporterSendFailing.",
			perSecond,
			query{failures("log_records"), "{{exporter}} log records"},
			query{failures("metric_points"), "{{exporter}} metric points"})).
		WithPanel(graph("Exporter records sent",
			"Log records (events) and metric points the collector's exporters sent per second, by exporter.",
			perSecond,
			query{`sum by (exporter) (` + rate("otelcol_exporter_sent_log_records", sel) + `)`, "{{exporter}} log records"},
			query{`sum by (exporter) (` + rate("otelcol_exporter_sent_metric_points", sel) + `)`, "{{exporter}} metric points"})).
		WithPanel(threshold(graph("Exporter queue fill",
			"Batches waiting in each exporter's sending queue over its capacity: a queue that fills is an endpoint that does not keep up; once full, data is refused. Only exporters with a sending queue (otlp_grpc, otlp_http) have one; the default configuration's have none.",
			fraction,
			query{`max by (exporter, data_type) (otelcol_exporter_queue_size{` + sel + `} / otelcol_exporter_queue_capacity{` + sel + `})`, "{{exporter}} {{data_type}}"}).
			Max(1), 0.9)).
		WithPanel(graph("Receiver log records",
			"Events the ebpf receiver handed to the pipeline per second, and those the pipeline refused (memory_limiter).",
			perSecond,
			query{`sum by (receiver) (` + rate("otelcol_receiver_accepted_log_records", sel) + `)`, "{{receiver}} accepted"},
			query{`sum by (receiver) (` + rate("otelcol_receiver_refused_log_records", sel) + `)`, "{{receiver}} refused"})).
		WithPanel(graph("Collector CPU",
			"CPU the collector process used, as a share of one CPU, by node (BPF programs run in the kernel and are counted above, not here).",
			fraction,
			query{`sum by (instance) (` + rate("otelcol_process_cpu_seconds", sel) + `)`, "{{instance}}"})).
		WithPanel(graph("Collector memory",
			"Resident memory of the collector process, by node.",
			bytesIEC,
			query{`sum by (instance) (otelcol_process_memory_rss{` + sel + `})`, "{{instance}}"})).
		WithPanel(graph("Scrape targets up",
			"1 when Prometheus scraped the target, 0 when it could not: a collector down for 5 minutes raises VigilCollectorDown.",
			count,
			query{`up{` + sel + `}`, "{{instance}}"}).
			Max(1).
			Span(24))
}

// failures is the rate of an exporter's failed sends of what (log_records,
// metric_points), or 0 for an exporter that sent some and never failed.
func failures(what string) string {
	return `sum by (exporter) (` + rate("otelcol_exporter_send_failed_"+what, sel) + `) or 0 * sum by (exporter) (` +
		rate("otelcol_exporter_sent_"+what, sel) + `)`
}
