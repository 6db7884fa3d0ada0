{{/*
The name of every object of the release: the release name when it holds
"vigil" (release vigil renders the names of distribution/kubernetes), else
"<release>-vigil".
*/}}
{{- define "vigil.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vigil.labels" -}}
{{ include "vigil.selectorLabels" . }}
app.kubernetes.io/part-of: vigil
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
vigil.labelsWith: the chart's labels over more labels (.extra), the chart's
winning: the selectors of the DaemonSet, the Service and the monitors rely
on them.
*/}}
{{- define "vigil.labelsWith" -}}
{{- $labels := mustMergeOverwrite (deepCopy (.extra | default dict)) (include "vigil.labels" .ctx | fromYaml) -}}
{{- toYaml $labels -}}
{{- end -}}

{{/*
The service account the collector runs as.
*/}}
{{- define "vigil.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vigil.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The collector image: repository@digest when a digest is set, else
repository:tag (tag defaults to the chart's appVersion).
*/}}
{{- define "vigil.image" -}}
{{- with .Values.image -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (.tag | default $.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
vigil.memoryBytes: a Kubernetes memory quantity (resources.limits.memory) in
bytes. Takes the forms a memory limit is written in: an integer or decimal
number, with or without a binary (Ki, Mi, Gi, Ti, Pi, Ei) or decimal (k, M,
G, T, P, E) suffix. Any other form (an exponent, milli units) fails the
render rather than being guessed at. Integer arithmetic throughout, so
1Gi is exactly 1073741824.
*/}}
{{- define "vigil.memoryBytes" -}}
{{- $q := . -}}
{{- if not (kindIs "string" $q) -}}
{{- $q = int64 $q | toString -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$" $q) -}}
{{- fail (printf "resources.limits.memory %q: useGOMEMLIMIT reads a number with an optional suffix (Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E); write the limit that way, or set useGOMEMLIMIT=false" $q) -}}
{{- end -}}
{{- $number := regexFind "^[0-9.]+" $q -}}
{{- $suffix := trimPrefix $number $q -}}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "P" 1000000000000000 "E" 1000000000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 -}}
{{- $fraction := regexReplaceAll "^[0-9]+\\.?" $number "" -}}
{{- $scale := 1 -}}
{{- range until (len $fraction) -}}
{{- $scale = mul $scale 10 -}}
{{- end -}}
{{- div (mul (replace "." "" $number | atoi) (get $units $suffix)) $scale -}}
{{- end -}}

{{/*
vigil.gomemlimit: 80% of a memory quantity, rounded down to a whole MiB, in
the form the Go runtime reads (GOMEMLIMIT=819MiB for 1Gi), as the
OpenTelemetry Collector chart sets it.
*/}}
{{- define "vigil.gomemlimit" -}}
{{- $bytes := include "vigil.memoryBytes" . | atoi -}}
{{- printf "%dMiB" (div (div (mul $bytes 4) 5) 1048576) -}}
{{- end -}}

{{/*
vigil.monitorEndpoints: the endpoints of a ServiceMonitor or PodMonitor
(.m: serviceMonitor or podMonitor values), each given the shared interval,
relabelings and metricRelabelings unless it sets its own.
*/}}
{{- define "vigil.monitorEndpoints" -}}
{{- $endpoints := list -}}
{{- range .m.metricsEndpoints -}}
{{- $e := deepCopy . -}}
{{- if and $.m.interval (not (hasKey $e "interval")) -}}
{{- $_ := set $e "interval" $.m.interval -}}
{{- end -}}
{{- if and $.m.relabelings (not (hasKey $e "relabelings")) -}}
{{- $_ := set $e "relabelings" $.m.relabelings -}}
{{- end -}}
{{- if and $.m.metricRelabelings (not (hasKey $e "metricRelabelings")) -}}
{{- $_ := set $e "metricRelabelings" $.m.metricRelabelings -}}
{{- end -}}
{{- $endpoints = append $endpoints $e -}}
{{- end -}}
{{- toYaml $endpoints -}}
{{- end -}}
