{{/*
The collector configuration: distribution/kubernetes/collector-config.yaml,
plus the otlp_grpc exporter when otlp.endpoint is set.
*/}}
{{- define "vigil.collectorConfig" -}}
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

processors:
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
  extensions: [health_check, k8s_metadata]
  pipelines:
    logs:
      receivers: [ebpf]
      processors: [k8s_workload, batch]
      exporters: [compact, event_stream{{ if .Values.otlp.endpoint }}, otlp_grpc{{ end }}]
    metrics:
      receivers: [ebpf]
      processors: [batch]
      exporters: [prometheus{{ if .Values.otlp.endpoint }}, otlp_grpc{{ end }}]
{{- end -}}
