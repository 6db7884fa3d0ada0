package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"

	"github.com/vigilsec/vigil/internal/policy"
)

func init() {
	policySubcommands["mode"] = command{
		summary: "switch a running policy between monitor and enforce without editing it",
		run:     runPolicyMode,
	}
}

const policyModeUsage = `usage: vigil policy mode [-file PATH] [-wait D] NAME monitor|enforce|source

Switches the running policy NAME (namespace/name for a namespaced one)
between monitor (Sigkill, Signal and Override only reported) and enforce,
whatever its policy-mode option says, as tetra tracingpolicy set-mode does;
source returns it to the mode its own text gives. The choice is kept in
policy-modes.json beside the collector's status_file (default
` + policy.DefaultStatusFile + `), root's alone, so that it outlives a restart of
the collector; the collector applies it at its next reading of the policies,
replacing the running version without a gap.

The command waits until the collector reports the policy running in the
new mode. Exit status: 0 once it does, 1 when the policy is unknown, the
collector refused the switch or did not report it in time, 2 on a usage
error.

flags:
`

func runPolicyMode(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("vigil policy mode", flag.ContinueOnError)
	fset.SetOutput(stderr)
	file := fset.String("file", policy.DefaultStatusFile, "the ebpf receiver's status_file")
	wait := fset.Duration("wait", 30*time.Second, "how long to wait for the collector to report the new mode")
	fset.Usage = func() {
		fmt.Fprint(stderr, policyModeUsage)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() != 2 || !slices.Contains([]string{policy.ModeMonitor, policy.ModeEnforce, "source"}, fset.Arg(1)) {
		fset.Usage()
		return 2
	}
	name, mode := fset.Arg(0), fset.Arg(1)
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil policy mode: "+format+"\n", a...)
		return 1
	}
	report, err := policy.ReadStatusFile(*file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("%s does not exist: is the collector running, with this status_file?", *file)
	case err != nil:
		return fail("%v", unwrapPathError(err))
	}
	i := slices.IndexFunc(report.Policies, func(s policy.Status) bool { return s.Name == name })
	if i < 0 || !report.Policies[i].Running {
		var running []string
		for _, s := range report.Policies {
			if s.Running {
				running = append(running, s.Name)
			}
		}
		return fail("no running policy %q; running: %v", name, running)
	}
	before, beforeErr := report.Policies[i].Mode, report.Policies[i].Error

	path := policy.ModesFile(*file)
	modes, err := policy.ReadModes(path)
	if err != nil {
		return fail("%v", err)
	}
	if mode == "source" {
		delete(modes, name)
	} else {
		modes[name] = mode
	}
	if err := policy.WriteModes(path, modes); err != nil {
		return fail("%v", err)
	}
	if mode == "source" {
		// What the source says is known only to the collector.
		fmt.Fprintf(stdout, "%s: mode of its source from the collector's next reading (was %s)\n", name, before)
		return 0
	}
	for deadline := time.Now().Add(*wait); ; time.Sleep(100 * time.Millisecond) {
		report, err := policy.ReadStatusFile(*file)
		if err == nil {
			if i := slices.IndexFunc(report.Policies, func(s policy.Status) bool { return s.Name == name }); i >= 0 {
				st := report.Policies[i]
				if st.Running && st.Mode == mode {
					fmt.Fprintf(stdout, "%s: %s (was %s)\n", name, mode, before)
					return 0
				}
				if st.Error != "" && st.Error != beforeErr && st.Mode != mode {
					return fail("%s: the collector refused it in %s mode, and the version running in %s mode keeps running: %s", name, mode, st.Mode, st.Error)
				}
			}
		}
		if time.Now().After(deadline) {
			return fail("%s: the collector did not report it in %s mode within %s (the mode is set in %s)", name, mode, *wait, path)
		}
	}
}
