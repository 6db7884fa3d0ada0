package policy

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// The decoder below maps a YAML node tree onto the policy types by their
// json tags, the way Kubernetes reads a custom resource (YAML to JSON to the
// Go type with unknown fields refused), but without leaving YAML: every
// error keeps the field path and the line of the node it is about.
//
// Two leniencies follow Kubernetes' YAML reader where plain JSON would be
// stricter: a plain yes/no/on/off is a boolean (YAML 1.1), and a number or
// boolean written where a string is expected is taken as its text (policy
// authors write `values: [0]`).

const (
	// Bounds on hostile input (aliases expanding exponentially, deep
	// nesting); real policies stay far below.
	maxDecodeNodes  = 1 << 20
	maxDecodeDepth  = 64
	maxDecodeErrors = 50
)

// k8sObjectMetaFields are the fields of Kubernetes' ObjectMeta that a policy
// read back from a cluster (kubectl get -o yaml) carries and that mean
// nothing to Vigil: they are accepted and dropped. Any other unknown
// metadata field is an error.
var k8sObjectMetaFields = map[string]bool{
	"generateName": true, "uid": true, "resourceVersion": true, "generation": true,
	"creationTimestamp": true, "deletionTimestamp": true, "deletionGracePeriodSeconds": true,
	"ownerReferences": true, "finalizers": true, "managedFields": true, "selfLink": true,
}

type decodeProblem struct {
	line   int
	path   string
	reason string
}

type yamlDecoder struct {
	errs  []decodeProblem
	nodes int
	stop  bool
}

func (d *yamlDecoder) fail(n *yaml.Node, path, format string, args ...any) {
	if d.stop {
		return
	}
	if len(d.errs) == maxDecodeErrors {
		d.errs = append(d.errs, decodeProblem{line: n.Line, path: path, reason: "too many errors, stopping"})
		d.stop = true
		return
	}
	d.errs = append(d.errs, decodeProblem{line: n.Line, path: path, reason: fmt.Sprintf(format, args...)})
}

// decode fills out (a pointer) from n.
func (d *yamlDecoder) decode(n *yaml.Node, out any) {
	d.value(n, reflect.ValueOf(out).Elem(), "", 0)
}

func (d *yamlDecoder) value(n *yaml.Node, v reflect.Value, path string, depth int) {
	if d.stop {
		return
	}
	d.nodes++
	if d.nodes > maxDecodeNodes || depth > maxDecodeDepth {
		d.fail(n, path, "document too large or too deeply nested")
		d.stop = true
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, path, "unresolved alias")
			return
		}
		d.value(n.Alias, v, path, depth+1)
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 1 {
			d.value(n.Content[0], v, path, depth+1)
		}
		return
	}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(n, elem.Elem(), path, depth+1)
		v.Set(elem)
	case reflect.Struct:
		d.structValue(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describeNode(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		d.mapValue(n, v, path, depth)
	case reflect.Interface:
		var x any
		if err := decodeAny(n, &x); err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", describeNode(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := yamlBool(n)
		if !ok {
			d.fail(n, path, "want true or false, got %s", describeNode(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := yamlInt(n)
		if !ok || v.OverflowInt(i) {
			d.fail(n, path, "want an integer from %d to %d, got %s", minInt(v.Type()), maxInt(v.Type()), describeNode(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, ok := yamlUint(n)
		if !ok || v.OverflowUint(u) {
			d.fail(n, path, "want an integer from 0 to %d, got %s", maxUint(v.Type()), describeNode(n))
			return
		}
		v.SetUint(u)
	default:
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

// mappingPairs lists the key/value pairs of a mapping with YAML merge keys
// ("<<: *base") resolved: explicit keys win over merged ones.
func (d *yamlDecoder) mappingPairs(n *yaml.Node, path string, depth int) [][2]*yaml.Node {
	var pairs, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.mergeSources(val, path, depth)...)
			continue
		}
		pairs = append(pairs, [2]*yaml.Node{k, val})
	}
	if len(merged) == 0 {
		return pairs
	}
	explicit := map[string]bool{}
	for _, p := range pairs {
		explicit[p[0].Value] = true
	}
	for _, p := range merged {
		if !explicit[p[0].Value] {
			explicit[p[0].Value] = true
			pairs = append(pairs, p)
		}
	}
	return pairs
}

func (d *yamlDecoder) mergeSources(n *yaml.Node, path string, depth int) [][2]*yaml.Node {
	if depth > maxDecodeDepth {
		d.fail(n, path, "document too large or too deeply nested")
		d.stop = true
		return nil
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.mappingPairs(n, path, depth+1)
	case yaml.SequenceNode:
		var out [][2]*yaml.Node
		for _, c := range n.Content {
			out = append(out, d.mergeSources(c, path, depth+1)...)
		}
		return out
	}
	d.fail(n, path, "a merge key (<<) takes a mapping, got %s", describeNode(n))
	return nil
}

func (d *yamlDecoder) structValue(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describeNode(n))
		return
	}
	fields := jsonFields(v.Type())
	isMeta := v.Type() == reflect.TypeOf(ObjectMeta{})
	seen := map[string]bool{}
	for _, kv := range d.mappingPairs(n, path, depth) {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a field name must be a string, got %s", describeNode(k))
			continue
		}
		fpath := joinField(path, k.Value)
		if seen[k.Value] {
			d.fail(k, fpath, "duplicate field")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			if isMeta && k8sObjectMetaFields[k.Value] {
				continue
			}
			d.fail(k, fpath, "unknown field")
			continue
		}
		d.value(val, v.Field(idx), fpath, depth+1)
	}
}

func (d *yamlDecoder) mapValue(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describeNode(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, path, "cannot decode into %s", v.Type())
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.mappingPairs(n, path, depth) {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a key must be a string, got %s", describeNode(k))
			continue
		}
		kpath := joinKey(path, k.Value)
		key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
		if m.MapIndex(key).IsValid() {
			d.fail(k, kpath, "duplicate key")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, kpath, depth+1)
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

var jsonFieldCache sync.Map // reflect.Type -> map[string]int

// jsonFields maps the json names of a struct's fields to their indexes.
func jsonFields(t reflect.Type) map[string]int {
	if m, ok := jsonFieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
	}
	jsonFieldCache.Store(t, m)
	return m
}

var simpleKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	if name == "" {
		return path
	}
	return path + "." + name
}

// joinKey adds a map key to a path: metadata.labels.app, or
// metadata.labels["app.kubernetes.io/name"] when the key is not a plain word.
func joinKey(path, key string) string {
	if simpleKeyRE.MatchString(key) {
		return joinField(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// yaml11Bools are the plain-scalar booleans of YAML 1.1, which Kubernetes'
// YAML reader (and so kubectl and Tetragon) still honours.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

func yamlBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	switch n.Tag {
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	case "!!str":
		if n.Style == 0 {
			b, ok := yaml11Bools[n.Value]
			return b, ok
		}
	}
	return false, false
}

func yamlInt(n *yaml.Node) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, false
	}
	var i int64
	if err := n.Decode(&i); err != nil {
		return 0, false
	}
	return i, true
}

func yamlUint(n *yaml.Node) (uint64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, false
	}
	var u uint64
	if err := n.Decode(&u); err != nil {
		return 0, false
	}
	return u, true
}

// decodeAny decodes a free-form value (the parts of the CRD that Vigil keeps
// as maps), turning a panic of the YAML library into an error.
func decodeAny(n *yaml.Node, out *any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot decode: %v", r)
		}
	}()
	if err := n.Decode(out); err != nil {
		return fmt.Errorf("cannot decode: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

func minInt(t reflect.Type) int64 { return -1 << (t.Bits() - 1) }
func maxInt(t reflect.Type) int64 { return 1<<(t.Bits()-1) - 1 }
func maxUint(t reflect.Type) uint64 {
	if t.Bits() == 64 {
		return math.MaxUint64
	}
	return 1<<t.Bits() - 1
}

// describeNode names a node's YAML type (and value, when short) for errors.
func describeNode(n *yaml.Node) string {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		val := n.Value
		if len(val) > 40 {
			val = val[:40] + "..."
		}
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "the boolean " + val
		case "!!int", "!!float":
			return "the number " + val
		}
		return "the string " + strconv.Quote(val)
	}
	return "nothing"
}

// scalarField returns the value of a scalar field of a mapping, or "".
func scalarField(m *yaml.Node, name string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// mappingField returns a field of a mapping that is itself a mapping.
func mappingField(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	return nil
}

// decodeFreeForm strictly decodes a value kept free-form in the types (a
// map[string]any from the parts of the CRD that are stored loosely) into
// out, reporting unknown fields and wrong types with paths relative to the
// value.
func decodeFreeForm(raw any, out any) (problems []decodeProblem, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot decode: %v", r)
		}
	}()
	var n yaml.Node
	if err := n.Encode(raw); err != nil {
		return nil, fmt.Errorf("cannot decode: %v", err)
	}
	d := yamlDecoder{}
	d.decode(&n, out)
	return d.errs, nil
}
