package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/internal/policy"
)

// policySubcommands are the `vigil policy <name>` commands.
var policySubcommands = map[string]command{
	"validate": {
		summary: "check policy files and directories without loading them (no root, no BPF)",
		run:     runPolicyValidate,
	},
}

func init() {
	register("policy", command{
		summary: "TracingPolicy tools: validate FILE|DIR..., status, mode NAME monitor|enforce",
		run:     runPolicy,
	})
}

func runPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		policyUsage(stderr)
		return 2
	}
	c, ok := policySubcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vigil policy: unknown command %q\n\n", args[0])
		policyUsage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func policyUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil policy <command> [arguments]\n\ncommands:")
	names := make([]string, 0, len(policySubcommands))
	for n := range policySubcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, policySubcommands[n].summary)
	}
}

const policyValidateUsage = `usage: vigil policy validate [-q] FILE|DIR...

Reads each file (for a directory, its *.yaml and *.yml files) as Tetragon
TracingPolicy YAML, checks every policy the way the collector does before
loading it, and prints one line per policy or problem:

  ok      FILE: KIND/NAME
  refused FILE: KIND/NAME: FIELD.PATH: REASON      (one line per problem)
  refused FILE: document N, line L: FIELD.PATH: REASON
  skipped FILE: document N: APIVERSION/KIND is not a TracingPolicy

A policy is refused when it is not valid Tetragon, exceeds one of Vigil's
limits, uses something Vigil does not support yet (the reason then ends in
"not supported by Vigil yet"), or has the kind, namespace and name of a
policy listed before it. Whether this kernel can host the policy's hooks is
not checked here: see vigil probe.

Exit status: 0 when every policy is ok, 1 when any is refused or a file
cannot be read, 2 on a usage error.

flags:
`

func runPolicyValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil policy validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quiet := fs.Bool("q", false, "print only refused and skipped lines")
	fs.Usage = func() {
		fmt.Fprint(stderr, policyValidateUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	v := policyValidator{out: stdout, quiet: *quiet, names: map[string]string{}}
	for _, arg := range fs.Args() {
		v.path(arg)
	}
	fmt.Fprintf(stderr, "%d ok, %d refused\n", v.ok, v.refused)
	if v.refused > 0 || v.failed {
		return 1
	}
	return 0
}

// policyValidator prints the result of validating files, in order.
type policyValidator struct {
	out     io.Writer
	quiet   bool
	ok      int
	refused int
	failed  bool
	// names maps kind/namespace/name to the file that first used it.
	names map[string]string
}

func (v *policyValidator) refuse(format string, args ...any) {
	fmt.Fprintf(v.out, "refused "+format+"\n", args...)
	v.failed = true
}

func (v *policyValidator) path(p string) {
	st, err := os.Stat(p)
	if err != nil {
		v.refuse("%s: %v", p, unwrapPathError(err))
		return
	}
	if !st.IsDir() {
		v.file(p)
		return
	}
	files, err := policy.PolicyFiles(p)
	if err != nil {
		v.refuse("%s: %v", p, unwrapPathError(err))
		return
	}
	if len(files) == 0 {
		v.refuse("%s: no *.yaml or *.yml file in the directory", p)
		return
	}
	for _, f := range files {
		v.file(f)
	}
}

func (v *policyValidator) file(file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		v.refuse("%s: %v", file, unwrapPathError(err))
		return
	}
	docs := policy.ParseDocuments(data, file)
	policies := 0
	for i := range docs {
		d := &docs[i]
		if !d.IsPolicy() {
			fmt.Fprintf(v.out, "skipped %s: document %d: %s is not a TracingPolicy\n", file, d.Index, objectKind(d))
			continue
		}
		policies++
		if len(d.Errors) > 0 {
			v.refused++
		}
		for _, e := range d.Errors {
			v.refuse("%s", e)
		}
		if d.Policy != nil {
			v.policy(file, d.Policy)
		}
	}
	if policies == 0 && !v.failedFile(docs) {
		v.refuse("%s: no TracingPolicy or TracingPolicyNamespaced in the file", file)
	}
}

// failedFile reports whether the file's documents already explain why no
// policy came out of it (a YAML syntax error).
func (v *policyValidator) failedFile(docs []policy.Document) bool {
	for _, d := range docs {
		if len(d.Errors) > 0 {
			return true
		}
	}
	return false
}

func (v *policyValidator) policy(file string, p *policy.TracingPolicy) {
	name := p.Kind + "/" + p.Metadata.Name
	if p.Metadata.Name == "" {
		name = p.Kind + "/(no name)"
	}
	// What only compiling finds (limits across selectors, actions a
	// hook kind cannot take) is refused here too, not at load.
	_, err := policy.Load(p)
	problems := loadProblems(err)
	key := p.Kind + "/" + p.Metadata.Namespace + "/" + p.Metadata.Name
	if first, dup := v.names[key]; dup && p.Metadata.Name != "" {
		problems = append(problems, &policy.FieldError{
			Path:   "metadata.name",
			Reason: fmt.Sprintf("%q is also the name of a %s in %s; loaded together, one would replace the other", p.Metadata.Name, p.Kind, first),
		})
	} else if p.Metadata.Name != "" {
		v.names[key] = file
	}
	if len(problems) == 0 {
		v.ok++
		if !v.quiet {
			fmt.Fprintf(v.out, "ok      %s: %s\n", file, name)
		}
		return
	}
	v.refused++
	for _, e := range problems {
		v.refuse("%s: %s: %s", file, name, e)
	}
}

// objectKind names a document that is not a policy, e.g. "v1/Pod".
func objectKind(d *policy.Document) string {
	if d.APIVersion == "" {
		return d.Kind
	}
	return d.APIVersion + "/" + d.Kind
}

// unwrapPathError drops the operation and path of an *os.PathError, which
// the output line already shows.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return errors.New(strings.TrimSpace(pe.Err.Error()))
	}
	return err
}

// loadProblems lists Load's refusals as field errors: Validate's and
// Supported's as they are, Compile's each with its path.
func loadProblems(err error) policy.FieldErrors {
	if err == nil {
		return nil
	}
	var problems policy.FieldErrors
	if errors.As(err, &problems) {
		return problems
	}
	var out policy.FieldErrors
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ce *policy.CompileError
		if errors.As(e, &ce) {
			out = append(out, &policy.FieldError{Path: ce.Path, Reason: ce.Reason})
		} else {
			out = append(out, &policy.FieldError{Path: "policy", Reason: e.Error()})
		}
	}
	return out
}
