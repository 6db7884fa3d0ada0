package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleResults = "VIGIL-KERNEL 6.1.0-56-cloud-amd64\r\n" +
	"VIGIL-LSM lockdown,capability,bpf\r\n" +
	"VIGIL-BINARY-START internal-kernel\r\n" +
	`=== RUN   TestPasses
--- PASS: TestPasses (0.01s)
=== RUN   TestMechanisms
=== RUN   TestMechanisms/kprobe
=== RUN   TestMechanisms/fentry
    hooks_test.go:40: loading fentry: permission denied
=== RUN   TestMechanisms/lsm
    hooks_test.go:12: some log line
    testenv.go:25: skipped (set CI=true to make this a failure): no BPF LSM
--- FAIL: TestMechanisms (0.30s)
    --- PASS: TestMechanisms/kprobe (0.10s)
    --- FAIL: TestMechanisms/fentry (0.10s)
    --- SKIP: TestMechanisms/lsm (0.10s)
FAIL

VIGIL-BINARY-END internal-kernel 1
VIGIL-BINARY-START receiver-ebpfreceiver
=== RUN   TestFine
--- PASS: TestFine (0.00s)
=== RUN   TestCrashes
panic: runtime error: index out of range [recovered]
goroutine 7 [running]:

VIGIL-BINARY-END receiver-ebpfreceiver 2
VIGIL-BINARY-START other
PASS
FAIL: TestMain said no

VIGIL-BINARY-END other 1
VIGIL-VMTEST-END 1
`

func TestParseResultsReadsEveryOutcome(t *testing.T) {
	r := parseResults(kernelImage{kernel: kernel{Name: "6.1"}}, vmRun{Results: []byte(sampleResults)})
	if r.Release != "6.1.0-56-cloud-amd64" || r.LSM != "lockdown,capability,bpf" {
		t.Errorf("release %q lsm %q", r.Release, r.LSM)
	}
	want := map[string]Status{
		vmRow:                                   Pass,
		"internal-kernel TestPasses":            Pass,
		"internal-kernel TestMechanisms":        Fail,
		"internal-kernel TestMechanisms/kprobe": Pass,
		"internal-kernel TestMechanisms/fentry": Fail,
		"internal-kernel TestMechanisms/lsm":    Skip,
		"receiver-ebpfreceiver TestFine":        Pass,
		"receiver-ebpfreceiver TestCrashes":     Fail,
		"other (binary)":                        Fail,
	}
	for row, status := range want {
		if got := r.Rows[row].Status; got != status {
			t.Errorf("%s: %s, want %s", row, got, status)
		}
	}
	if len(r.Rows) != len(want) {
		t.Errorf("rows %v", r.Order)
	}
	if got := r.Rows["internal-kernel TestMechanisms/lsm"].Reason; got != "skipped (set CI=true to make this a failure): no BPF LSM" {
		t.Errorf("skip reason %q", got)
	}
	if got := r.Rows["internal-kernel TestMechanisms/fentry"].Output; len(got) != 1 || !strings.Contains(got[0], "permission denied") {
		t.Errorf("fentry output %q", got)
	}
	crash := r.Rows["receiver-ebpfreceiver TestCrashes"]
	if !strings.Contains(crash.Reason, "exited 2") || !strings.Contains(strings.Join(crash.Output, "\n"), "panic: runtime error") {
		t.Errorf("crash %+v", crash)
	}
	if r.Order[0] != vmRow || r.Order[1] != "internal-kernel TestPasses" {
		t.Errorf("order %q", r.Order)
	}
}

func TestParseResultsFailsAGuestWithoutEndMarker(t *testing.T) {
	dir := t.TempDir()
	console := filepath.Join(dir, "console.log")
	os.WriteFile(console, []byte("[    5.1] Kernel panic - not syncing: Attempted to kill init!\r\n"), 0o644)
	stream := "VIGIL-BINARY-START internal-kernel\n=== RUN   TestHangs\n"
	r := parseResults(kernelImage{}, vmRun{Results: []byte(stream), Console: console})
	vm := r.Rows[vmRow]
	if vm.Status != Fail || !strings.Contains(vm.Reason, "Kernel panic") {
		t.Errorf("vm row %+v", vm)
	}
	if got := r.Rows["internal-kernel TestHangs"]; got.Status != Fail || !strings.Contains(got.Reason, "did not finish") {
		t.Errorf("hanging test %+v", got)
	}

	r = parseResults(kernelImage{}, vmRun{Results: []byte(stream), TimedOut: true, Console: console})
	if vm := r.Rows[vmRow]; vm.Status != Fail || !strings.Contains(vm.Reason, "timed out") {
		t.Errorf("timeout: vm row %+v", vm)
	}
}

func TestPrintTableHasOneColumnPerKernel(t *testing.T) {
	a := parseResults(kernelImage{kernel: kernel{Name: "6.1"}}, vmRun{Results: []byte(sampleResults)})
	b := parseResults(kernelImage{kernel: kernel{Name: "7.3"}}, vmRun{Results: []byte("VIGIL-BINARY-START internal-kernel\n--- PASS: TestPasses (0.00s)\nVIGIL-BINARY-END internal-kernel 0\nVIGIL-VMTEST-END 0\n")})
	var out bytes.Buffer
	printTable(&out, []*kernelReport{a, b})
	lines := strings.Split(out.String(), "\n")
	if f := strings.Fields(lines[0]); len(f) != 3 || f[1] != "6.1" || f[2] != "7.3" {
		t.Errorf("header %q", lines[0])
	}
	for _, want := range []string{
		"internal-kernel TestPasses             PASS",
		"SKIP(skipped (set CI=true to make this a failure):...)",
		"FAIL(exited 1 with no failing test)",
		"FAIL internal-kernel TestMechanisms/fentry on 6.1",
		"    hooks_test.go:40: loading fentry: permission denied",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if f := strings.Fields(strings.TrimPrefix(lines[2], vmRow)); len(f) != 2 || f[0] != "PASS" || f[1] != "PASS" {
		t.Errorf("vm row %q", lines[2])
	}
}

func TestCorpusOutcomesReadTheTestsLogLines(t *testing.T) {
	results := []byte("=== RUN   TestTetragonExamplesLoadOnThisKernel\r\n" +
		"    examples_test.go:47: vigil-corpus: a.yaml\tpol-a\tloaded: kprobe.multi\r\n" +
		"    examples_test.go:47: vigil-corpus: b.yaml\tpol-b\trefused: spec.lsmhooks[0]: x | y\n" +
		"    examples_test.go:47: vigil-corpus: c.yaml\tpol-c\t-\n" +
		"    other line\n")
	got := corpusOutcomes(results)
	want := map[string]string{
		"a.yaml\tpol-a": "loaded: kprobe.multi",
		"b.yaml\tpol-b": "refused: spec.lsmhooks[0]: x | y",
		"c.yaml\tpol-c": "-",
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: got %q, want %q", k, got[k], v)
		}
	}
}

func TestParseResultsKeepsWhatVigilProbeSaid(t *testing.T) {
	results := "VIGIL-KERNEL 6.12.118+deb13-cloud-arm64\n" +
		"VIGIL-PROBE-START\n" +
		"FEATURE  STATUS\n" +
		"btf      yes\n" +
		"VIGIL-PROBE-END 0\n" +
		"VIGIL-VMTEST-END 0\n"
	r := parseResults(kernelImage{kernel: kernel{Name: "6.12-arm64"}}, vmRun{Results: []byte(results)})
	if got := strings.Join(r.Probe, "|"); got != "FEATURE  STATUS|btf      yes" {
		t.Errorf("probe output %q", got)
	}
	if res := r.Rows[probeRow]; res.Status != Pass {
		t.Errorf("probe row %+v, want PASS", res)
	}
	var b bytes.Buffer
	printProbes(&b, []*kernelReport{r})
	if !strings.Contains(b.String(), "vigil probe on 6.12-arm64 (6.12.118+deb13-cloud-arm64):\n    FEATURE  STATUS\n") {
		t.Errorf("printed %q", b.String())
	}

	failed := parseResults(kernelImage{kernel: kernel{Name: "x"}}, vmRun{Results: []byte(strings.Replace(results, "PROBE-END 0", "PROBE-END 1", 1))})
	if res := failed.Rows[probeRow]; res.Status != Fail || !strings.Contains(res.Reason, "exited 1") {
		t.Errorf("probe row %+v, want FAIL saying it exited 1", res)
	}
}
