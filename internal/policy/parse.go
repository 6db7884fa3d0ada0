package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// ErrMalformed is wrapped by every *ParseError: the source is not YAML, or
// a policy document in it does not have the shape of a TracingPolicy.
var ErrMalformed = errors.New("malformed policy")

// ParseError is one problem that keeps a document from being read as a
// policy. It names the source, the document (counted from 1 in the order
// of the YAML stream), the line, and the field path where the field is
// known, e.g. spec.kprobes[0].selectors[1].matchArgs[0].opertor.
type ParseError struct {
	Source   string
	Document int
	Line     int
	Path     string
	Reason   string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Document > 0 {
		fmt.Fprintf(&b, ": document %d", e.Document)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ", line %d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Document is one YAML document of a policy source.
//
// A document is read as a policy when its kind is TracingPolicy or
// TracingPolicyNamespaced (or, misspelled in case only, close enough that
// Validate should name the mistake), or when it has no kind but a
// cilium.io apiVersion. Any other Kubernetes object (a Pod next to the
// policy that protects it, say) is not a policy: Policy and Errors are both
// empty and the caller reports it as skipped. Empty documents are dropped.
type Document struct {
	Source string
	// Index counts the documents of the source from 1, empty ones included,
	// so that it matches what an editor shows between "---" lines.
	Index int
	// Line is where the document starts.
	Line int
	// APIVersion, Kind and Name are read from the document even when it
	// fails to parse, to name it in reports.
	APIVersion string
	Kind       string
	Name       string
	// Policy is the parsed policy, nil when the document is not a policy
	// or did not parse.
	Policy *TracingPolicy
	// Errors lists why a policy document did not parse; it holds every
	// unknown field and mistyped value found, not only the first.
	Errors []*ParseError
}

// IsPolicy reports whether the document was taken as a policy, parsed or
// not. A document that is not is another Kubernetes object, skipped.
func (d *Document) IsPolicy() bool { return d.Policy != nil || len(d.Errors) > 0 }

// ParseDocuments reads every document of a YAML stream. It never stops at
// a bad policy document: each document carries its own result, so a caller
// can load the good ones and report the others. A YAML syntax error ends
// the stream, since nothing after it can be located reliably.
func ParseDocuments(data []byte, source string) []Document {
	var docs []Document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for index := 1; ; index++ {
		var root yaml.Node
		err := decodeYAML(dec, &root)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			line, reason := yamlErrorLine(err)
			docs = append(docs, Document{
				Source: source,
				Index:  index,
				Errors: []*ParseError{{Source: source, Document: index, Line: line, Reason: reason}},
			})
			return docs
		}
		n := &root
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			n = n.Content[0]
		}
		if isNull(n) {
			continue
		}
		doc := Document{Source: source, Index: index, Line: n.Line}
		parseDocument(&doc, n)
		docs = append(docs, doc)
	}
}

// decodeYAML reads the next document, turning a panic of the YAML library
// on hostile input into an error.
func decodeYAML(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot read document: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlErrorLine splits "yaml: line 3: mapping values are not allowed" into
// the line and the reason.
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, "invalid YAML: " + msg[len(m[0]):]
	}
	return 0, "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}

// parseDocument classifies one non-empty document and, if it is a policy,
// decodes it strictly.
func parseDocument(doc *Document, n *yaml.Node) {
	fail := func(line int, path, reason string) {
		doc.Errors = append(doc.Errors, &ParseError{
			Source: doc.Source, Document: doc.Index, Line: line, Path: path, Reason: reason,
		})
	}
	if n.Kind != yaml.MappingNode {
		fail(n.Line, "", "want a Kubernetes object (a mapping with apiVersion and kind), got "+describeNode(n))
		return
	}
	doc.APIVersion = scalarField(n, "apiVersion")
	doc.Kind = scalarField(n, "kind")
	if m := mappingField(n, "metadata"); m != nil {
		doc.Name = scalarField(m, "name")
	}
	switch {
	case strings.EqualFold(doc.Kind, KindTracingPolicy), strings.EqualFold(doc.Kind, KindTracingPolicyNamespaced):
	case doc.Kind == "" && strings.HasPrefix(doc.APIVersion, "cilium.io/"):
	case doc.Kind == "":
		fail(n.Line, "kind", "required: a policy document has kind TracingPolicy or TracingPolicyNamespaced")
		return
	default:
		return // another Kubernetes object
	}
	p := new(TracingPolicy)
	d := yamlDecoder{}
	d.decode(n, p)
	for _, e := range d.errs {
		fail(e.line, e.path, e.reason)
	}
	if len(doc.Errors) == 0 {
		doc.Policy = p
	}
}

// Parse reads the policies of a YAML stream (documents separated by "---").
// source names the stream in errors, usually its file name.
//
// Decoding is strict: an unknown field is an error naming its path, as is a
// value of the wrong YAML type. Documents that are other Kubernetes objects
// are skipped; empty documents are ignored. Parse returns every policy that
// parsed and, if any document failed, an error joining one *ParseError per
// problem; a caller that loads all or nothing discards the policies then.
// Parse does not validate: see Validate and Supported.
func Parse(data []byte, source string) ([]*TracingPolicy, error) {
	var policies []*TracingPolicy
	var errs []error
	for _, d := range ParseDocuments(data, source) {
		if d.Policy != nil {
			policies = append(policies, d.Policy)
		}
		for _, e := range d.Errors {
			errs = append(errs, e)
		}
	}
	return policies, errors.Join(errs...)
}

// ParseFile reads the policies of one file; see Parse.
func ParseFile(path string) ([]*TracingPolicy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// PolicyFiles lists the policy files of a directory: its *.yaml and *.yml
// files, sorted by name, not descending into subdirectories and leaving
// out hidden files (a Kubernetes ConfigMap volume keeps its real files in
// hidden "..data" directories and links them from the top).
func PolicyFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		ext := filepath.Ext(name)
		if ext != ".yaml" && ext != ".yml" {
			continue
		}
		path := filepath.Join(dir, name)
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			continue // dangling link or a directory named *.yaml
		}
		files = append(files, path)
	}
	sort.Strings(files)
	return files, nil
}

// SourceFiles lists the policy files of the given files and directories
// in the order they take precedence: paths as given, a directory's files
// as PolicyFiles lists them. Where two files define a policy of one name,
// the one listed first is the one that loads (`vigil policy validate` and
// the collector decide the same way). A file reached twice, named and
// inside a named directory, is listed once.
func SourceFiles(paths []string) ([]string, error) {
	var files []string
	listed := map[string]bool{}
	add := func(f string) {
		if !listed[filepath.Clean(f)] {
			listed[filepath.Clean(f)] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		dir, err := PolicyFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range dir {
			add(f)
		}
	}
	return files, nil
}

// ParseDir reads the policies of every file PolicyFiles lists, in order.
// Like Parse it returns what parsed together with every error.
func ParseDir(dir string) ([]*TracingPolicy, error) {
	files, err := PolicyFiles(dir)
	if err != nil {
		return nil, err
	}
	var policies []*TracingPolicy
	var errs []error
	for _, f := range files {
		ps, err := ParseFile(f)
		policies = append(policies, ps...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return policies, errors.Join(errs...)
}
