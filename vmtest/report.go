package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Status is a test's outcome in one kernel.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// result is one row's cell: a test, or the VM itself, in one kernel.
type result struct {
	Status Status
	// Reason says why a test skipped or what went wrong with a run.
	Reason string
	// Output is what the test printed, for the failure details.
	Output []string
}

// kernelReport is what one kernel's boot produced, parsed.
type kernelReport struct {
	Image   kernelImage
	Release string // uname -r in the guest
	LSM     string // /sys/kernel/security/lsm in the guest
	// Config is the kernel config the tests judged the kernel by
	// (VIGIL_KERNEL_CONFIG), "none" when its package ships none.
	Config string
	// Probe is what `vigil probe` printed in the guest.
	Probe []string
	Run   vmRun
	// Rows maps a row name ("internal-kernel TestX/sub") to its cell, in
	// the order of Order.
	Rows  map[string]result
	Order []string
}

// probeRow is the row of `vigil probe`, run before the tests.
const probeRow = "vigil probe"

// vmRow is the row that says whether the guest booted, ran every binary and
// reported its end; tests are only trusted when it passes.
const vmRow = "VM: boot, run, end marker"

var (
	runLine    = regexp.MustCompile(`^=== (?:RUN|CONT|NAME)\s+(\S+)`)
	resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)
	// go test's own prefix on t.Log lines: "    file_test.go:12: ".
	logPrefix = regexp.MustCompile(`^\s*\S+\.go:\d+: `)
)

// parseResults reads the guest's results stream: the markers of the /init
// script around the `-test.v` output of each test binary.
func parseResults(img kernelImage, run vmRun) *kernelReport {
	r := &kernelReport{Image: img, Run: run, Rows: map[string]result{}}
	set := func(row string, res result) {
		if _, ok := r.Rows[row]; !ok {
			r.Order = append(r.Order, row)
		}
		r.Rows[row] = res
	}
	r.Order = append(r.Order, vmRow)

	var (
		binary   string          // the binary running, "" between binaries
		current  string          // the test whose output follows
		started  map[string]bool // tests with a RUN line and no result yet
		output   map[string][]string
		loose    []string // output outside any test: panics, TestMain
		ended    = false
		probing  = false
		endRC    = -1
		problems []string
	)
	// finishBinary settles the binary that just ended: rc is its exit code,
	// or -1 when the guest stopped under it.
	finishBinary := func(rc int) {
		died := fmt.Sprintf("%s exited %d before the test reported a result", binary, rc)
		if rc < 0 {
			died = binary + " did not finish: the guest stopped under it"
		}
		failed := false
		for _, row := range r.Order {
			if strings.HasPrefix(row, binary+" ") && r.Rows[row].Status == Fail {
				failed = true
			}
		}
		for _, name := range sortedKeys(started) {
			// Started, never reported: the binary died under it (a panic,
			// the test timeout) or the guest did.
			set(binary+" "+name, result{Status: Fail, Reason: died, Output: append(output[name], loose...)})
			failed = true
		}
		if rc != 0 && !failed {
			why := fmt.Sprintf("exited %d with no failing test", rc)
			if rc < 0 {
				why = died
			}
			set(binary+" (binary)", result{Status: Fail, Reason: why, Output: loose})
		}
	}

	sc := bufio.NewScanner(bytes.NewReader(run.Results))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "VIGIL-KERNEL "):
			r.Release = strings.TrimPrefix(line, "VIGIL-KERNEL ")
			continue
		case strings.HasPrefix(line, "VIGIL-LSM "):
			r.LSM = strings.TrimPrefix(line, "VIGIL-LSM ")
			continue
		case strings.HasPrefix(line, "VIGIL-KERNEL-CONFIG "):
			r.Config = strings.TrimPrefix(line, "VIGIL-KERNEL-CONFIG ")
			continue
		case strings.HasPrefix(line, "VIGIL-MOUNT-FAILED "):
			problems = append(problems, "could not mount "+strings.TrimPrefix(line, "VIGIL-MOUNT-FAILED "))
			continue
		case line == "VIGIL-PROBE-START":
			probing = true
			continue
		case strings.HasPrefix(line, "VIGIL-PROBE-END "):
			probing = false
			res := result{Status: Pass}
			if rc := strings.TrimPrefix(line, "VIGIL-PROBE-END "); rc != "0" {
				res = result{Status: Fail, Reason: "vigil probe exited " + rc, Output: r.Probe}
			}
			set(probeRow, res)
			continue
		case probing:
			r.Probe = append(r.Probe, line)
			continue
		case strings.HasPrefix(line, "VIGIL-BINARY-START "):
			binary = strings.TrimPrefix(line, "VIGIL-BINARY-START ")
			current, started, output, loose = "", map[string]bool{}, map[string][]string{}, nil
			continue
		case strings.HasPrefix(line, "VIGIL-BINARY-END "):
			f := strings.Fields(line)
			rc, _ := strconv.Atoi(f[len(f)-1])
			if binary != "" {
				finishBinary(rc)
			}
			binary = ""
			continue
		case strings.HasPrefix(line, "VIGIL-VMTEST-END "):
			ended = true
			endRC, _ = strconv.Atoi(strings.TrimPrefix(line, "VIGIL-VMTEST-END "))
			continue
		}
		if binary == "" {
			continue
		}
		if m := runLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			if strings.HasPrefix(line, "=== RUN") {
				started[current] = true
			}
			continue
		}
		if m := resultLine.FindStringSubmatch(line); m != nil {
			name := m[2]
			res := result{Status: Status(m[1]), Output: output[name]}
			if res.Status == Skip {
				res.Reason = skipReason(output[name])
			}
			delete(started, name)
			set(binary+" "+name, res)
			continue
		}
		if line == "PASS" || line == "FAIL" || strings.TrimSpace(line) == "" {
			continue
		}
		if current != "" && started[current] && strings.HasPrefix(line, "    ") {
			output[current] = append(output[current], strings.TrimSpace(line))
		} else {
			loose = append(loose, line)
		}
	}
	if binary != "" {
		finishBinary(-1)
	}

	vm := result{Status: Pass}
	switch {
	case run.QEMUErr != nil:
		vm = result{Status: Fail, Reason: "QEMU failed: " + run.QEMUErr.Error()}
	case run.TimedOut:
		vm = result{Status: Fail, Reason: fmt.Sprintf("timed out after %s, no end marker (console: %s)", run.Elapsed.Round(time.Second), run.Console)}
	case !ended:
		vm = result{Status: Fail, Reason: "the guest stopped without the end marker: " + consoleVerdict(run.Console)}
	case len(problems) > 0:
		vm = result{Status: Fail, Reason: strings.Join(problems, "; ")}
	}
	if vm.Status == Pass {
		if oops := consoleOops(run.Console); oops != "" {
			vm = result{Status: Fail, Reason: "kernel reported: " + oops}
		}
	}
	if vm.Status == Pass && endRC != 0 && !r.anyFail() {
		vm = result{Status: Fail, Reason: fmt.Sprintf("end marker says %d with no failing test", endRC)}
	}
	if vm.Status == Fail {
		vm.Output = consoleTail(run.Console, 25)
	}
	r.Rows[vmRow] = vm
	return r
}

// addExcluded shows the tests of bins that notInVM leaves out as SKIP.
func (r *kernelReport) addExcluded(bins []testBinary, ownRun bool) {
	for _, e := range notInVM {
		if !e.excludedOn(ownRun) {
			continue
		}
		for _, b := range bins {
			row := b.Name + " " + e.Test
			if filepath.Clean(b.Pkg) != filepath.Clean(e.Pkg) {
				continue
			}
			if _, ok := r.Rows[row]; ok {
				continue
			}
			// After the binary's last row, or at the end.
			at := len(r.Order)
			for i, o := range r.Order {
				if strings.HasPrefix(o, b.Name+" ") {
					at = i + 1
				}
			}
			r.Order = slices.Insert(r.Order, at, row)
			r.Rows[row] = result{Status: Skip, Reason: "not run in the VM: " + e.Reason}
		}
	}
}

func (r *kernelReport) anyFail() bool {
	for _, res := range r.Rows {
		if res.Status == Fail {
			return true
		}
	}
	return false
}

// skipReason is the last message a skipped test logged, which is the one
// t.Skip printed, without the file:line prefix.
func skipReason(out []string) string {
	if len(out) == 0 {
		return "no reason given"
	}
	return logPrefix.ReplaceAllString(out[len(out)-1], "")
}

// oopsLines are the console lines that show the kernel in trouble, the most
// telling first: a panic names its cause, a Call Trace alone does not.
var oopsLines = []*regexp.Regexp{
	regexp.MustCompile(`Kernel panic`),
	regexp.MustCompile(`BUG: |Oops|general protection fault`),
	regexp.MustCompile(`WARNING: `),
	regexp.MustCompile(`Call Trace:`),
}

// consoleOops returns the most telling line of the console that shows the
// kernel in trouble, or "".
func consoleOops(console string) string {
	b, err := os.ReadFile(console)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	for _, re := range oopsLines {
		for _, l := range lines {
			if re.MatchString(l) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

// consoleTail returns the last n lines of the guest's console.
func consoleTail(console string, n int) []string {
	b, err := os.ReadFile(console)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r", ""), "\n"), "\n")
	return lines[max(0, len(lines)-n):]
}

// counts returns how many rows passed, failed and skipped.
func (r *kernelReport) counts() (pass, fail, skip int) {
	for _, res := range r.Rows {
		switch res.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		case Skip:
			skip++
		}
	}
	return pass, fail, skip
}

// consoleVerdict describes why a guest stopped, from its console.
func consoleVerdict(console string) string {
	if oops := consoleOops(console); oops != "" {
		return oops
	}
	return "no panic on the console; see " + console
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	// Parents start before their subtests; sorting keeps them together.
	sort.Strings(keys)
	return keys
}

// printTable writes the kernel x test table, then the reasons of every SKIP
// and the output of every FAIL.
func printTable(w io.Writer, reports []*kernelReport) {
	var rows []string
	seen := map[string]bool{}
	for _, r := range reports {
		for _, row := range r.Order {
			if !seen[row] {
				seen[row] = true
				rows = append(rows, row)
			}
		}
	}
	cell := func(res result, ok bool) string {
		switch {
		case !ok:
			return "-"
		case res.Status == Skip:
			return "SKIP(" + shorten(res.Reason, 48) + ")"
		case res.Status == Fail && res.Reason != "":
			return "FAIL(" + shorten(res.Reason, 48) + ")"
		}
		return string(res.Status)
	}
	header := []string{"test"}
	for _, r := range reports {
		header = append(header, r.Image.Name)
	}
	table := [][]string{header}
	for _, row := range rows {
		line := []string{row}
		for _, r := range reports {
			res, ok := r.Rows[row]
			line = append(line, cell(res, ok))
		}
		table = append(table, line)
	}
	widths := make([]int, len(header))
	for _, l := range table {
		for i, c := range l {
			widths[i] = max(widths[i], len(c))
		}
	}
	for i, l := range table {
		var b strings.Builder
		for j, c := range l {
			b.WriteString(c)
			if j < len(l)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-len(c)+2))
			}
		}
		fmt.Fprintln(w, b.String())
		if i == 0 {
			fmt.Fprintln(w, strings.Repeat("-", len(b.String())))
		}
	}

	fmt.Fprintln(w)
	for _, r := range reports {
		fmt.Fprintf(w, "%-5s %s (%s %s) uname -r %q, lsm %q, config %s\n", r.Image.Name, r.Image.Package, r.Image.Version, r.Image.Suite, r.Release, r.LSM, r.Config)
	}
	for _, r := range reports {
		for _, row := range r.Order {
			res := r.Rows[row]
			switch res.Status {
			case Skip:
				fmt.Fprintf(w, "\nSKIP %s on %s: %s\n", row, r.Image.Name, res.Reason)
			case Fail:
				fmt.Fprintf(w, "\nFAIL %s on %s (%s)", row, r.Image.Name, r.Release)
				if res.Reason != "" {
					fmt.Fprintf(w, ": %s", res.Reason)
				}
				fmt.Fprintln(w)
				out := res.Output
				if len(out) > 40 {
					out = append([]string{"..."}, out[len(out)-40:]...)
				}
				for _, l := range out {
					fmt.Fprintf(w, "    %s\n", l)
				}
			}
		}
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// printProbes prints what `vigil probe` said in each guest.
func printProbes(w io.Writer, reports []*kernelReport) {
	for _, r := range reports {
		if len(r.Probe) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nvigil probe on %s (%s):\n", r.Image.Name, r.Release)
		for _, l := range r.Probe {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}
