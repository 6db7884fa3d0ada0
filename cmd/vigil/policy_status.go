package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/internal/policy"
)

func init() {
	policySubcommands["status"] = command{
		summary: "the policies a running collector has loaded or refused, and why",
		run:     runPolicyStatus,
	}
}

const policyStatusUsage = `usage: vigil policy status [-file PATH] [-o table|json]

Prints what the running collector's ebpf receiver did with each policy it
read, from files or from TracingPolicy objects in the cluster:

  NAME  STATE  MODE  SOURCE  HOOKS
  ...
  refused lines follow with the field path and the reason

STATE is running, refused (never loaded), or running+refused (a later
version was refused and the previous one keeps running). HOOKS says how each
hook is attached in this kernel. The collector writes the report to its
status_file (default ` + policy.DefaultStatusFile + `) whenever it changes,
readable by root only (it tells which files and calls are watched).

Exit status: 0 when every policy runs as read, 1 when any is refused or the
report cannot be read, 2 on a usage error.

flags:
`

func runPolicyStatus(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("vigil policy status", flag.ContinueOnError)
	fset.SetOutput(stderr)
	file := fset.String("file", policy.DefaultStatusFile, "the ebpf receiver's status_file")
	format := fset.String("o", "table", "output: table or json")
	fset.Usage = func() {
		fmt.Fprint(stderr, policyStatusUsage)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() > 0 || (*format != "table" && *format != "json") {
		fset.Usage()
		return 2
	}
	report, err := policy.ReadStatusFile(*file)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "vigil policy status: %s does not exist: is the collector running, with this status_file?\n", *file)
		return 1
	}
	if errors.Is(err, fs.ErrPermission) {
		fmt.Fprintf(stderr, "vigil policy status: %s is readable by root only: run as root (sudo vigil policy status)\n", *file)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil policy status: %v\n", unwrapPathError(err))
		return 1
	}
	refused := 0
	for _, p := range report.Policies {
		if p.Error != "" {
			refused++
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	} else {
		printPolicyStatus(stdout, report)
	}
	if refused > 0 {
		return 1
	}
	return 0
}

func printPolicyStatus(w io.Writer, r policy.StatusReport) {
	if len(r.Policies) == 0 {
		fmt.Fprintf(w, "no policies (report of %s)\n", r.Updated.Local().Format(time.DateTime))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tMODE\tSOURCE\tHOOKS")
	for _, p := range r.Policies {
		state := "running"
		switch {
		case p.Error != "" && p.Running:
			state = "running+refused"
		case p.Error != "":
			state = "refused"
		}
		var hooks []string
		for _, h := range p.Hooks {
			hooks = append(hooks, h.Path+": "+h.Mechanism)
		}
		mode := p.Mode
		if mode == "" {
			mode = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, state, mode, p.Source, strings.Join(hooks, ", "))
	}
	tw.Flush()
	for _, p := range r.Policies {
		if p.Error == "" {
			continue
		}
		fmt.Fprintf(w, "\n%s refused:\n", p.Name)
		for _, line := range strings.Split(p.Error, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}
