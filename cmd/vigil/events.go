package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/vigilsec/vigil/exporter/eventstreamexporter/eventstreampb"
	"github.com/vigilsec/vigil/internal/event"
)

func init() {
	register("events", command{
		summary: "follow the live events of the collector on this node",
		run: func(args []string, stdout, stderr io.Writer) int {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runEvents(ctx, args, stdout, stderr)
		},
	})
}

// defaultEventsSocket is the event_stream exporter's default socket.
// It is spelled out rather than imported so that the command does not link
// the exporter (and the OTTL engine it carries); a test keeps both equal.
const defaultEventsSocket = "/var/run/vigil/events.sock"

// knownEvents are the event names --event accepts, so that a typo is an
// error rather than a silent stream of nothing.
var knownEvents = []string{
	event.NameEnforcementAction,
	event.NameProcessExec,
	event.NameProcessExit,
	event.NameProcessKprobe,
	event.NameProcessLSM,
	event.NameProcessLoader,
	event.NameProcessTracepoint,
	event.NameProcessUprobe,
	event.NameProcessUsdt,
}

const eventsUsage = `usage: vigil events [flags]

Follows the events of the collector on this node as they happen, through its
event_stream exporter. Filters are ANDed; a filter given more than once
matches any of its values. Ctrl-C stops.

  -o, --output compact|json    compact: one tetra-style line per event (default)
                               json: one OTLP JSON log record per line, with its
                               resource and scope
  --namespace NS               pods in namespace NS (k8s.namespace.name)
  --pods REGEX                 pods whose name matches REGEX (k8s.pod.name)
  --container-id PREFIX        containers whose id starts with PREFIX
  --process REGEX              processes whose binary path matches REGEX
  --event NAME                 events named NAME: process.exec, process.exit, ...
  --policy NAME                events of the policy NAME (security_rule.name)
  --condition OTTL             events for which the OTTL condition holds, in the
                               log context: attributes["process.user.id"] == 0
  --color auto|always|never    colour compact lines (auto: when stdout is a terminal)
  --timestamps                 start compact lines with the event's time (UTC)
  --socket PATH                the collector's socket (default ` + defaultEventsSocket + `)
  --address HOST:PORT          the collector's loopback TLS endpoint instead, with
  --ca-file FILE               the CA of the collector's certificate, and
  --cert-file FILE             your client certificate and
  --key-file FILE              its key

Names (--namespace, --container-id, --event, --policy) may also be given as a
comma-separated list. Regular expressions are RE2 and unanchored.

examples:
  vigil events
  vigil events --namespace default --pods '^xwing'
  vigil events --event process.exec --condition 'attributes["process.user.id"] == 0'
  kubectl exec -n vigil ds/vigil -- vigil events --pods xwing
`

// eventsOptions is the parsed command line.
type eventsOptions struct {
	output     string
	color      string
	timestamps bool
	socket     string
	address    string
	caFile     string
	certFile   string
	keyFile    string
	filter     *eventstreampb.Filter
}

// usageError is a command line that cannot run; the command exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// stringList collects a repeated flag. With split, each value is also
// split at commas, as tetra accepts --namespace a,b.
type stringList struct {
	values []string
	split  bool
}

func (l *stringList) String() string { return strings.Join(l.values, ",") }

func (l *stringList) Set(v string) error {
	if l.split {
		l.values = append(l.values, strings.Split(v, ",")...)
	} else {
		l.values = append(l.values, v)
	}
	return nil
}

// parseEventsArgs parses and checks the command line, everything that can
// be checked without the collector. Errors are *usageError, or flag.ErrHelp.
func parseEventsArgs(args []string) (*eventsOptions, error) {
	o := &eventsOptions{}
	// Names cannot hold commas and may come as lists; regular
	// expressions can ({1,3}) and never do.
	namespaces, containers := stringList{split: true}, stringList{split: true}
	events, policies := stringList{split: true}, stringList{split: true}
	var pods, processes stringList
	var condition string

	fs := flag.NewFlagSet("vigil events", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.output, "o", "compact", "")
	fs.StringVar(&o.output, "output", "compact", "")
	fs.Var(&namespaces, "namespace", "")
	fs.Var(&pods, "pods", "")
	fs.Var(&containers, "container-id", "")
	fs.Var(&processes, "process", "")
	fs.Var(&events, "event", "")
	fs.Var(&policies, "policy", "")
	fs.StringVar(&condition, "condition", "", "")
	fs.StringVar(&o.color, "color", "auto", "")
	fs.BoolVar(&o.timestamps, "timestamps", false, "")
	fs.StringVar(&o.socket, "socket", defaultEventsSocket, "")
	fs.StringVar(&o.address, "address", "", "")
	fs.StringVar(&o.caFile, "ca-file", "", "")
	fs.StringVar(&o.certFile, "cert-file", "", "")
	fs.StringVar(&o.keyFile, "key-file", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("unexpected argument %q: filters are flags, such as --pods %s", fs.Arg(0), fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch o.output {
	case "compact", "json":
	default:
		return nil, usageErrorf("-o: must be compact or json, got %q", o.output)
	}
	switch o.color {
	case "auto", "always", "never":
	default:
		return nil, usageErrorf("--color: must be auto, always or never, got %q", o.color)
	}
	for _, l := range []struct {
		flag   string
		values []string
	}{{"--namespace", namespaces.values}, {"--container-id", containers.values}, {"--policy", policies.values}} {
		if slices.Contains(l.values, "") {
			return nil, usageErrorf("%s: must not be empty", l.flag)
		}
	}
	for _, e := range events.values {
		if !slices.Contains(knownEvents, e) {
			return nil, usageErrorf("--event %q: unknown event; known events: %s", e, strings.Join(knownEvents, ", "))
		}
	}
	for _, l := range []struct {
		flag  string
		exprs []string
	}{{"--pods", pods.values}, {"--process", processes.values}} {
		for _, expr := range l.exprs {
			// The collector compiles them too; checking here reports a
			// typo without a round trip, even with no collector running.
			if _, err := regexp.Compile(expr); err != nil {
				return nil, usageErrorf("%s %q: %v", l.flag, expr, err)
			}
		}
	}
	if set["socket"] && set["address"] {
		return nil, usageErrorf("--socket and --address exclude each other: give one")
	}
	tlsFlags := set["ca-file"] || set["cert-file"] || set["key-file"]
	if o.address != "" {
		if _, _, err := net.SplitHostPort(o.address); err != nil {
			return nil, usageErrorf("--address: must be HOST:PORT, got %q", o.address)
		}
		if o.caFile == "" || o.certFile == "" || o.keyFile == "" {
			return nil, usageErrorf("--address needs --ca-file, --cert-file and --key-file: the collector's TCP endpoint only admits clients with a certificate")
		}
	} else if tlsFlags {
		return nil, usageErrorf("--ca-file, --cert-file and --key-file apply to --address only")
	}

	o.filter = &eventstreampb.Filter{
		Namespaces:   namespaces.values,
		PodRegex:     pods.values,
		ContainerIds: containers.values,
		ProcessRegex: processes.values,
		EventNames:   events.values,
		PolicyNames:  policies.values,
		Condition:    condition,
	}
	return o, nil
}

// runEvents is `vigil events`: it returns 0 when ctx ends (Ctrl-C), 2 for
// a command line or filter the collector refuses, 1 for anything else that
// stops it.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseEventsArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, eventsUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil events: %v\n", err)
		fmt.Fprintln(stderr, "run 'vigil events -h' for usage")
		return 2
	}
	f, err := newFollower(o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vigil events: %v\n", err)
		return 1
	}
	return f.run(ctx)
}
