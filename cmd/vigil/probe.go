package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/cilium/ebpf"

	"github.com/vigilsec/vigil/internal/kernel"
)

func init() {
	register("probe", command{
		summary: "report the kernel features Vigil can use and the mechanism each hook kind gets",
		run:     runProbe,
	})
}

func runProbe(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: vigil probe")
		return 2
	}
	if err := kernel.CheckPrerequisites(); err != nil {
		fmt.Fprintf(stderr, "vigil probe: %v\n(the answers below may be wrong for want of privilege)\n\n", err)
	}
	fs := kernel.Probe()
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FEATURE\tSTATUS")
	for _, f := range fs {
		fmt.Fprintf(w, "%s\t%s\n", f.Name, featureStatus(f.Err))
	}
	w.Flush()
	fmt.Fprintln(stdout)
	w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOOK\tMECHANISM")
	for _, m := range fs.Mechanisms() {
		if m.Err != nil {
			fmt.Fprintf(w, "%s\trefused: %v\n", m.Hook, m.Err)
		} else {
			fmt.Fprintf(w, "%s\t%s\n", m.Hook, m.Mechanism)
		}
	}
	w.Flush()
	return 0
}

func featureStatus(err error) string {
	switch {
	case err == nil:
		return "yes"
	case errors.Is(err, ebpf.ErrNotSupported):
		return "no: " + err.Error()
	default:
		return "unusable: " + err.Error()
	}
}
