package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilsec/vigil/internal/event"
	"github.com/vigilsec/vigil/internal/kernel"
)

func init() {
	register("enforcement", command{
		summary: "list or remove the kernel deny-list entries of the enforcement processor",
		run:     runEnforcement,
	})
}

const enforcementUsage = `usage:
  vigil enforcement list [--pin-path DIR]
  vigil enforcement remove [--pin-path DIR] exec BINARY
  vigil enforcement remove [--pin-path DIR] [--port N] [--cgroup ID] connect CIDR

list shows the deny_exec and deny_connect entries with their expiry and the
id of the rule that added them (vigil.enforcement.rule_id in its audit
records); remove takes one out, named as list shows it. Both need root.`

func runEnforcement(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "remove") {
		fmt.Fprintln(stderr, enforcementUsage)
		return 2
	}
	fs := flag.NewFlagSet("vigil enforcement "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, enforcementUsage) }
	pin := fs.String("pin-path", kernel.DefaultPinPath, "bpffs directory where the ebpf receiver pins its deny lists")
	port := fs.Uint("port", 0, "connect: the entry's port (0: every port)")
	cgroup := fs.Uint64("cgroup", 0, "connect: the entry's cgroup id (0: every cgroup)")
	// Flags may come before or after the positional arguments.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	var entry kernel.DenyEntry
	switch {
	case args[0] == "list" && len(pos) == 0:
	case args[0] == "remove" && len(pos) == 2 && pos[0] == "exec":
		entry = kernel.DenyEntry{Kind: kernel.DenyExec, Binary: pos[1]}
	case args[0] == "remove" && len(pos) == 2 && pos[0] == "connect":
		p, err := kernel.ParseDestination(pos[1])
		if err != nil {
			fmt.Fprintf(stderr, "vigil enforcement remove: %v\n", err)
			return 2
		}
		if *port > 65535 {
			fmt.Fprintf(stderr, "vigil enforcement remove: --port %d: 0 to 65535\n", *port)
			return 2
		}
		entry = kernel.DenyEntry{Kind: kernel.DenyConnect, Prefix: p, Port: uint16(*port), Cgroup: *cgroup}
	default:
		fmt.Fprintln(stderr, enforcementUsage)
		return 2
	}

	d, err := openDenyLists(*pin)
	if err != nil {
		fmt.Fprintf(stderr, "vigil enforcement %s: %v\n", args[0], err)
		return 1
	}
	defer d.Close()
	if args[0] == "remove" {
		if err := d.Remove(entry); err != nil {
			fmt.Fprintf(stderr, "vigil enforcement remove: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "removed %s\n", entry)
		return 0
	}
	entries, err := d.List()
	if err != nil {
		fmt.Fprintf(stderr, "vigil enforcement list: %v\n", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tTARGET\tEXPIRES\tRULE")
	now := time.Now()
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Kind, denyTarget(e), expires(e.Expires, now), event.RuleIDString(e.Rule))
	}
	w.Flush()
	return 0
}

// openDenyLists explains the two usual failures: no privilege, and no
// collector running (nothing pinned).
func openDenyLists(pin string) (*kernel.DenyLists, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root: the deny lists are BPF maps pinned in bpffs")
	}
	if _, err := os.Stat(filepath.Join(pin, "deny_exec")); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no deny lists pinned at %s: is the collector running (with the ebpf receiver)?", pin)
	}
	return kernel.OpenDenyLists(pin)
}

// denyTarget is the entry as `remove` takes it back.
func denyTarget(e kernel.DenyEntry) string {
	if e.Kind == kernel.DenyExec {
		return e.Binary
	}
	var b strings.Builder
	b.WriteString(e.Prefix.String())
	if e.Port != 0 {
		b.WriteString(" --port " + strconv.Itoa(int(e.Port)))
	}
	if e.Cgroup != 0 {
		b.WriteString(" --cgroup " + strconv.FormatUint(e.Cgroup, 10))
	}
	return b.String()
}

func expires(t, now time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !now.Before(t):
		return t.UTC().Format(time.RFC3339) + " (expired)"
	default:
		return t.UTC().Format(time.RFC3339) + " (in " + t.Sub(now).Round(time.Second).String() + ")"
	}
}
