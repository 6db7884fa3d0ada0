{{/*
vigil.defaultConfig: the chart's default collector configuration, the one
of distribution/kubernetes/collector-config.yaml, plus the otlp_grpc
exporter when otlp.endpoint is set.
*/}}
{{- define "vigil.defaultConfig" -}}
extensions:
  # The kubelet's probes call http://<pod IP>:13133/.
  health_check:
    endpoint: ${env:POD_IP}:13133
  # Pods of this node (K8S_NODE_NAME, from the downward API), their owners,
  # namespaces and TracingPolicy objects, shared by the receiver and the
  # processor.
  k8s_metadata:
    auth_type: serviceAccount
    node_from_env_var: K8S_NODE_NAME

receivers:
  ebpf:
    # Loads TracingPolicy and TracingPolicyNamespaced objects live, and
    # enforces their podSelector in the kernel.
    k8s_metadata: k8s_metadata
    process:
      # The host's /proc, mounted read-only (hostPID: true).
      procfs: /procRoot
    # The policies ConfigMap, watched.
    policies: [/etc/vigil/policies]
    {{- $disabled := list }}
    {{- $enforce := list }}
    {{- range $name, $p := .Values.library.policies }}
    {{- if not $p.enabled }}
    {{- $disabled = append $disabled $name }}
    {{- else if $p.enforce }}
    {{- $enforce = append $enforce $name }}
    {{- end }}
    {{- end }}
    # The detection library (values: library).
    library:
      enabled: {{ .Values.library.enabled }}
      disabled: {{ toJson $disabled }}
      enforce: {{ toJson $enforce }}

processors:
  # First in every pipeline (vigil.collectorConfig puts it there): refuses
  # data before the container reaches its memory limit, checked every
  # second, as the OpenTelemetry Collector chart presets it. The
  # percentages are of the cgroup's memory limit.
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 25
  k8s_workload:
    k8s_metadata: k8s_metadata
    # How long an event of a brand-new container may wait for its pod.
    wait_for_metadata: 2s
    extract:
      labels:
        - key: app.kubernetes.io/name
        - key: app
  batch: {}

exporters:
  # One line per event in `kubectl logs`.
  compact:
    output: stdout
    color: never
  # The live stream `vigil events` follows, in the collector's pod.
  event_stream:
    socket: /var/run/vigil/events.sock
  # vigil.* metrics at http://<pod IP>:9464/metrics.
  prometheus:
    endpoint: ${env:POD_IP}:9464
  {{- with .Values.otlp }}
  {{- if .endpoint }}
  otlp_grpc:
    endpoint: {{ .endpoint | quote }}
    {{- if .insecure }}
    tls:
      insecure: true
    {{- end }}
    {{- with .headers }}
    headers:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  {{- end }}
  {{- end }}

service:
  # The collector's own metrics at http://<pod IP>:8888/metrics.
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:POD_IP}
                port: 8888
  extensions: [health_check, k8s_metadata]
  pipelines:
    logs:
      receivers: [ebpf]
      processors: [memory_limiter, k8s_workload, batch]
      exporters: [compact, event_stream{{ if .Values.otlp.endpoint }}, otlp_grpc{{ end }}]
    metrics:
      receivers: [ebpf]
      processors: [memory_limiter, k8s_workload, batch]
      exporters: [prometheus{{ if .Values.otlp.endpoint }}, otlp_grpc{{ end }}]
{{- end -}}

{{/*
vigil.dropNulls removes from .config every key .user sets to null, at any
depth: the way to delete a key of the default configuration through
`config` (Helm keeps the nulls of a value its chart has no default for).
*/}}
{{- define "vigil.dropNulls" -}}
{{- $config := .config -}}
{{- range $key, $value := .user -}}
{{- if kindIs "invalid" $value -}}
{{- $_ := unset $config $key -}}
{{- else if and (kindIs "map" $value) (kindIs "map" (get $config $key)) -}}
{{- include "vigil.dropNulls" (dict "config" (get $config $key) "user" $value) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
vigil.collectorConfig: the configuration the collector runs with.
alternateConfig, when set, as it is. Otherwise the default, with config
merged over it (maps key by key, lists and scalars replaced, null deletes),
and the memory_limiter processor first in every pipeline; when config
deletes the processor, it leaves every pipeline too.
*/}}
{{- define "vigil.collectorConfig" -}}
{{- if .Values.alternateConfig -}}
{{- toYaml .Values.alternateConfig -}}
{{- else -}}
{{- $config := mustMergeOverwrite (include "vigil.defaultConfig" . | fromYaml) (deepCopy .Values.config) -}}
{{- include "vigil.dropNulls" (dict "config" $config "user" .Values.config) -}}
{{- $limiter := hasKey (get $config "processors" | default dict) "memory_limiter" -}}
{{- range $name, $pipeline := dig "service" "pipelines" dict $config -}}
{{- if kindIs "map" $pipeline -}}
{{- $processors := without (get $pipeline "processors" | default list) "memory_limiter" -}}
{{- if $limiter -}}
{{- $processors = prepend $processors "memory_limiter" -}}
{{- end -}}
{{- $_ := set $pipeline "processors" $processors -}}
{{- end -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
{{- end -}}
