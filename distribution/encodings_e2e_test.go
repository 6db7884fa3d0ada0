package distribution_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cilium/tetragon/api/v1/tetragon"
	"google.golang.org/protobuf/encoding/protojson"
)

// The distribution writes a policy's event as Tetragon's export through
// the file exporter, and POSTs it as a Falco alert through the webhook
// exporter, to a loopback stand-in for falcosidekick.
func TestDistributionWritesTetragonExportAndPostsFalcoAlerts(t *testing.T) {
	dir := t.TempDir()
	watched := filepath.Join(dir, "watched")
	os.WriteFile(watched, []byte("x"), 0o644)
	policies := filepath.Join(dir, "policies")
	os.Mkdir(policies, 0o755)
	os.WriteFile(filepath.Join(policies, "watch.yaml"), []byte(fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: watch-file}
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    message: watched file opened
    tags: [T1005]
    args: [{index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Equal, values: [%q]}]
`, watched)), 0o644)

	var mu sync.Mutex
	var alerts []map[string]any
	sidekick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a map[string]any
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
	}))
	defer sidekick.Close()

	export := filepath.Join(dir, "tetragon.log")
	config := filepath.Join(dir, "config.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`
extensions:
  tetragon_encoding:
  falco_encoding:
receivers:
  ebpf:
    policies: [%s]
    status_file: %s
processors:
  batch:
    timeout: 100ms
exporters:
  file/tetragon:
    path: %s
    encoding: tetragon_encoding
  webhook:
    endpoint: %s
    encoding: falco_encoding
service:
  extensions: [tetragon_encoding, falco_encoding]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [ebpf]
      processors: [batch]
      exporters: [file/tetragon, webhook]
`, policies, filepath.Join(dir, "policies.json"), export, sidekick.URL)), 0o600)

	c := startCollector(t, nil, "--config", config)
	eventually(t, "the open in Tetragon's export and as a Falco alert", func() (bool, string) {
		cmd := exec.Command("/bin/cat", watched)
		cmd.Run()
		var kprobe *tetragon.ProcessKprobe
		b, _ := os.ReadFile(export)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue // a batch with nothing for Tetragon
			}
			var ev tetragon.GetEventsResponse
			if err := protojson.Unmarshal(sc.Bytes(), &ev); err != nil {
				return false, fmt.Sprintf("a line Tetragon's types do not read: %v\n%s", err, sc.Text())
			}
			if k := ev.GetProcessKprobe(); k != nil && k.GetPolicyName() == "watch-file" {
				kprobe = k
			}
		}
		if kprobe == nil {
			return false, "no process_kprobe of watch-file in the export:\n" + string(b) + c.Stderr()
		}
		if kprobe.GetArgs()[0].GetStringArg() != watched || kprobe.GetMessage() != "watched file opened" ||
			filepath.Base(kprobe.GetProcess().GetBinary()) != "cat" {
			return false, fmt.Sprintf("process_kprobe %v", kprobe)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range alerts {
			fields, _ := a["output_fields"].(map[string]any)
			if a["rule"] == "watch-file" && fields["fd.name"] == watched && a["priority"] == "Warning" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("alerts %v", alerts)
	})
	c.Stop(t)
}
