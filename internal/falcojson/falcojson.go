// Package falcojson turns Vigil's detections into Falco's JSON alerts
// (json_output: rule, priority, output, output_fields, time, source, tags,
// hostname), the form falcosidekick's HTTP input and Falco's consumers
// take.
//
// A detection is a record a policy made (process.kprobe, tracepoint,
// uprobe, usdt, lsm) or an enforcement.action audit; process exec and exit
// records are activity, not alerts, and are left out.
package falcojson

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/vigilsec/vigil/internal/event"
)

// Alert is one Falco JSON alert.
type Alert struct {
	UUID         string         `json:"uuid,omitempty"`
	Output       string         `json:"output"`
	Priority     string         `json:"priority"`
	Rule         string         `json:"rule"`
	Time         time.Time      `json:"time"`
	OutputFields map[string]any `json:"output_fields"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Hostname     string         `json:"hostname"`
}

// Falco's priorities, most severe first.
const (
	PriorityEmergency = "Emergency"
	PriorityAlert     = "Alert"
	PriorityCritical  = "Critical"
	PriorityError     = "Error"
	PriorityWarning   = "Warning"
	PriorityNotice    = "Notice"
	PriorityInfo      = "Informational"
	PriorityDebug     = "Debug"
)

// alerting are the records that are detections.
var alerting = map[string]bool{
	event.NameProcessKprobe: true, event.NameProcessTracepoint: true, event.NameProcessUprobe: true,
	event.NameProcessUsdt: true, event.NameProcessLSM: true, event.NameEnforcementAction: true,
}

// Marshal returns the detections of ld as Falco JSON alerts, one a line,
// separated by newlines (the file exporter ends the last), and how many
// records were not detections.
func Marshal(ld plog.Logs) (out []byte, skipped int, err error) {
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource().Attributes()
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				a, ok := FromRecord(res, lr)
				if !ok {
					skipped++
					continue
				}
				b, err := json.Marshal(a)
				if err != nil {
					return nil, skipped, fmt.Errorf("falco json: %w", err)
				}
				if len(out) > 0 {
					out = append(out, '\n')
				}
				out = append(out, b...)
			}
		}
	}
	return out, skipped, nil
}

// Priority maps a record's severity to Falco's priority. Without one, a
// detection whose kernel action stopped the process or the call is
// Critical, any other Warning.
func Priority(lr plog.LogRecord) string {
	switch n := lr.SeverityNumber(); {
	case n >= plog.SeverityNumberFatal:
		return PriorityCritical
	case n >= plog.SeverityNumberError:
		return PriorityError
	case n >= plog.SeverityNumberWarn:
		return PriorityWarning
	case n >= plog.SeverityNumberInfo2:
		return PriorityNotice
	case n >= plog.SeverityNumberInfo:
		return PriorityInfo
	case n >= plog.SeverityNumberTrace:
		return PriorityDebug
	}
	actions := str(lr.Attributes(), event.AttrAction) + "," + str(lr.Attributes(), event.AttrEnforcementAction)
	for _, a := range strings.Split(actions, ",") {
		switch strings.ToLower(a) {
		case "sigkill", "override", "signal", "kill", "deny_exec", "deny_connect":
			return PriorityCritical
		}
	}
	return PriorityWarning
}

// fieldNames are the Falco names of the attributes alerts carry, in the
// order the output line shows the first of them.
var fieldNames = []struct{ falco, attr string }{
	{"proc.exepath", event.AttrProcessExecutablePath},
	{"proc.cmdline", event.AttrProcessCommandLine},
	{"fd.name", event.AttrFilePath},
	{"user.uid", event.AttrProcessUserID},
	{"proc.pid", event.AttrProcessPID},
	{"proc.ppid", event.AttrProcessParentPID},
	{"proc.name", event.AttrProcessExecutableName},
	{"proc.cwd", event.AttrProcessWorkingDir},
	{"proc.pexepath", event.AttrParentExecutablePath},
	{"evt.type", event.AttrHook},
	{"fd.sip", event.AttrDestinationAddress},
	{"fd.sport", event.AttrDestinationPort},
	{"fd.cip", event.AttrSourceAddress},
	{"fd.cport", event.AttrSourcePort},
	{"fd.l4proto", event.AttrNetworkTransport},
	{"vigil.exec_id", event.AttrExecID},
	{"vigil.action", event.AttrAction},
}

// targetNames stand for the process fields in enforcement.action records.
var targetNames = []struct{ falco, attr string }{
	{"proc.exepath", event.AttrTargetBinary},
	{"proc.pid", event.AttrTargetPID},
	{"vigil.exec_id", event.AttrTargetExecID},
}

// resourceNames are the Falco names of the resource's attributes.
var resourceNames = []struct{ falco, attr string }{
	{"container.id", event.AttrContainerID},
	{"container.name", event.AttrK8sContainer},
	{"container.image.repository", event.AttrContainerImageName},
	{"k8s.ns.name", event.AttrK8sNamespace},
	{"k8s.pod.name", event.AttrK8sPodName},
	{"k8s.pod.uid", event.AttrK8sPodUID},
}

// outputFields are the fields the output line shows, in order.
var outputFields = []string{"proc.exepath", "proc.cmdline", "fd.name", "fd.sip", "fd.sport", "user.uid", "k8s.ns.name", "k8s.pod.name", "container.id"}

// FromRecord converts one record with its resource; ok is false for a
// record that is not a detection.
func FromRecord(res pcommon.Map, lr plog.LogRecord) (Alert, bool) {
	if !alerting[lr.EventName()] {
		return Alert{}, false
	}
	attrs := lr.Attributes()
	fields := map[string]any{}
	for _, f := range fieldNames {
		if v, ok := attrs.Get(f.attr); ok {
			fields[f.falco] = v.AsRaw()
		}
	}
	// An enforcement audit names its target, not a process of its own.
	for _, f := range targetNames {
		if _, ok := fields[f.falco]; !ok {
			if v, ok := attrs.Get(f.attr); ok {
				fields[f.falco] = v.AsRaw()
			}
		}
	}
	for _, f := range resourceNames {
		if v, ok := res.Get(f.attr); ok {
			fields[f.falco] = v.AsRaw()
		}
	}
	if tags, ok := res.Get(event.AttrContainerImageTags); ok && tags.Type() == pcommon.ValueTypeSlice && tags.Slice().Len() > 0 {
		fields["container.image.tag"] = tags.Slice().At(0).AsString()
	}
	t := lr.Timestamp().AsTime().UTC()
	fields["evt.time"] = t.UnixNano()
	a := Alert{
		Priority:     Priority(lr),
		Rule:         str(attrs, event.AttrSecurityRuleName),
		Time:         t,
		OutputFields: fields,
		Source:       "syscall",
		Hostname:     str(res, event.AttrHostName),
		Tags:         tagsOf(attrs),
	}
	message := str(attrs, event.AttrMessage)
	if message == "" {
		message = lr.Body().AsString()
	}
	a.Output = output(t, a.Priority, message, fields)
	return a, true
}

// output writes Falco's line: "15:04:05.000000000: Priority message
// (field=value ...)".
func output(t time.Time, priority, message string, fields map[string]any) string {
	var kv []string
	for _, name := range outputFields {
		if v, ok := fields[name]; ok {
			kv = append(kv, fmt.Sprintf("%s=%v", name, v))
		}
	}
	return fmt.Sprintf("%s: %s %s (%s)", t.Format("15:04:05.000000000"), priority, message, strings.Join(kv, " "))
}

// tagsOf are the policy's tags, sorted (Falco sorts its rule tags), never
// null: falcosidekick outputs iterate them.
func tagsOf(attrs pcommon.Map) []string {
	tags := []string{}
	if v, ok := attrs.Get(event.AttrTags); ok && v.Type() == pcommon.ValueTypeSlice {
		for _, e := range v.Slice().All() {
			tags = append(tags, e.AsString())
		}
	}
	sort.Strings(tags)
	return tags
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}
