// Package policy reads Tetragon's TracingPolicy and TracingPolicyNamespaced
// (cilium.io/v1alpha1), validates them against what Vigil's engine supports,
// and compiles them into the tables the kernel programs evaluate.
//
// The types mirror Tetragon's CRD field for field, so that the same YAML
// loads in both tools; semantics follow Tetragon's documentation.
package policy

// APIVersion is the only API version accepted.
const APIVersion = "cilium.io/v1alpha1"

// Kinds of policy objects.
const (
	KindTracingPolicy           = "TracingPolicy"
	KindTracingPolicyNamespaced = "TracingPolicyNamespaced"
)

// TracingPolicy is one policy object, cluster-wide or namespaced.
type TracingPolicy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       Spec       `json:"spec"`
}

// ObjectMeta is the part of Kubernetes object metadata a policy uses.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is what a policy hooks and what it does there.
type Spec struct {
	KProbes     []KProbeSpec     `json:"kprobes,omitempty"`
	Tracepoints []TracepointSpec `json:"tracepoints,omitempty"`
	UProbes     []UProbeSpec     `json:"uprobes,omitempty"`
	LsmHooks    []LsmHookSpec    `json:"lsmhooks,omitempty"`
	Usdts       []UsdtSpec       `json:"usdts,omitempty"`
	// Enforcers exist in newer Tetragon releases; they are parsed so that
	// such a policy is refused by name, not as malformed.
	Enforcers         []map[string]any `json:"enforcers,omitempty"`
	Lists             []ListSpec       `json:"lists,omitempty"`
	Options           []OptionSpec     `json:"options,omitempty"`
	PodSelector       *LabelSelector   `json:"podSelector,omitempty"`
	ContainerSelector *LabelSelector   `json:"containerSelector,omitempty"`

	// Fields of Tetragon's CRD added after the first version of these
	// types; parsed so that a policy using them is validated and, where
	// Vigil lacks the feature, refused by name.

	// Loader asks for loader (mmap of executable code) events.
	Loader bool `json:"loader,omitempty"`
	// Fentries hooks kernel functions through fentry/fexit.
	Fentries []KProbeSpec `json:"fentries,omitempty"`
	// HostSelector is null or {} (every host); a TracingPolicyNamespaced
	// has none.
	HostSelector *LabelSelector `json:"hostSelector,omitempty"`
	// SelectorsMacros names selectors that hooks can refer to.
	SelectorsMacros map[string]SelectorSpec `json:"selectorsMacros,omitempty"`
}

// KProbeSpec hooks a kernel function, or a syscall when Syscall is set.
type KProbeSpec struct {
	// Call is the function name, or "list:NAME" for every entry of a list.
	Call            string         `json:"call"`
	Syscall         bool           `json:"syscall"`
	Return          bool           `json:"return"`
	Args            []ArgSpec      `json:"args,omitempty"`
	ReturnArg       *ArgSpec       `json:"returnArg,omitempty"`
	ReturnArgAction string         `json:"returnArgAction,omitempty"`
	Selectors       []SelectorSpec `json:"selectors,omitempty"`
	Message         string         `json:"message,omitempty"`
	Tags            []string       `json:"tags,omitempty"`
	Ignore          *IgnoreSpec    `json:"ignore,omitempty"`
	Data            []ArgSpec      `json:"data,omitempty"`
}

// IgnoreSpec lists load errors a kprobe tolerates.
type IgnoreSpec struct {
	CallNotFound bool `json:"callNotFound,omitempty"`
}

// TracepointSpec hooks a kernel tracepoint.
type TracepointSpec struct {
	Subsystem string         `json:"subsystem"`
	Event     string         `json:"event"`
	Raw       bool           `json:"raw,omitempty"`
	Args      []ArgSpec      `json:"args,omitempty"`
	Selectors []SelectorSpec `json:"selectors,omitempty"`
	Message   string         `json:"message,omitempty"`
	Tags      []string       `json:"tags,omitempty"`
}

// UProbeSpec hooks functions of a user-space binary.
type UProbeSpec struct {
	Path          string         `json:"path"`
	Symbols       []string       `json:"symbols,omitempty"`
	Offsets       []uint64       `json:"offsets,omitempty"`
	RefCtrOffsets []uint64       `json:"refCtrOffsets,omitempty"`
	Return        bool           `json:"return,omitempty"`
	Args          []ArgSpec      `json:"args,omitempty"`
	ReturnArg     *ArgSpec       `json:"returnArg,omitempty"`
	Selectors     []SelectorSpec `json:"selectors,omitempty"`
	Message       string         `json:"message,omitempty"`
	Tags          []string       `json:"tags,omitempty"`
	BTFPath       string         `json:"btfPath,omitempty"`
	// Addrs are addresses in the binary to hook (Tetragon's CRD).
	Addrs []uint64 `json:"addrs,omitempty"`
	// Data lists extra values to read at the hook (Tetragon's CRD).
	Data []ArgSpec `json:"data,omitempty"`
}

// UsdtSpec hooks a USDT probe (a statically defined tracing point,
// DTRACE_PROBE or STAP_PROBE in C) of a user-space binary: every site of
// provider:name in the file. Its arguments are the probe's, located as the
// binary's .note.stapsdt says.
type UsdtSpec struct {
	Path      string         `json:"path"`
	Provider  string         `json:"provider"`
	Name      string         `json:"name"`
	Args      []ArgSpec      `json:"args,omitempty"`
	Selectors []SelectorSpec `json:"selectors,omitempty"`
	Message   string         `json:"message,omitempty"`
	Tags      []string       `json:"tags,omitempty"`
}

// LsmHookSpec hooks a BPF LSM hook.
type LsmHookSpec struct {
	Hook      string         `json:"hook"`
	Args      []ArgSpec      `json:"args,omitempty"`
	Selectors []SelectorSpec `json:"selectors,omitempty"`
	Message   string         `json:"message,omitempty"`
	Tags      []string       `json:"tags,omitempty"`
}

// ArgSpec describes one argument to read at the hook.
type ArgSpec struct {
	Index        uint32 `json:"index"`
	Type         string `json:"type"`
	Label        string `json:"label,omitempty"`
	SizeArgIndex uint32 `json:"sizeArgIndex,omitempty"`
	ReturnCopy   bool   `json:"returnCopy,omitempty"`
	MaxData      bool   `json:"maxData,omitempty"`
	Resolve      string `json:"resolve,omitempty"`
	BTFType      string `json:"btfType,omitempty"`
	// Source names where the value comes from when it is not a function
	// argument (Tetragon's CRD; used by data entries).
	Source string `json:"source,omitempty"`
}

// SelectorSpec is one in-kernel filter: its matchers are ANDed, selectors
// of a hook are tried in order and the first that matches decides.
type SelectorSpec struct {
	MatchPIDs              []PIDSelector        `json:"matchPIDs,omitempty"`
	MatchArgs              []ArgSelector        `json:"matchArgs,omitempty"`
	MatchData              []ArgSelector        `json:"matchData,omitempty"`
	MatchReturnArgs        []ArgSelector        `json:"matchReturnArgs,omitempty"`
	MatchBinaries          []BinarySelector     `json:"matchBinaries,omitempty"`
	MatchParentBinaries    []BinarySelector     `json:"matchParentBinaries,omitempty"`
	MatchNamespaces        []NamespaceSelector  `json:"matchNamespaces,omitempty"`
	MatchNamespaceChanges  []map[string]any     `json:"matchNamespaceChanges,omitempty"`
	MatchCapabilities      []CapabilitySelector `json:"matchCapabilities,omitempty"`
	MatchCapabilityChanges []map[string]any     `json:"matchCapabilityChanges,omitempty"`
	MatchActions           []ActionSelector     `json:"matchActions,omitempty"`
	MatchReturnActions     []ActionSelector     `json:"matchReturnActions,omitempty"`
	// Macros names entries of spec.selectorsMacros whose matchers join
	// this selector's; Validate expands them in place.
	Macros []string `json:"macros,omitempty"`
}

// PIDSelector matches the process id.
type PIDSelector struct {
	Operator       string   `json:"operator"`
	Values         []uint32 `json:"values"`
	IsNamespacePID bool     `json:"isNamespacePID,omitempty"`
	FollowForks    bool     `json:"followForks,omitempty"`
}

// ArgSelector matches one argument (or the return value).
type ArgSelector struct {
	Index    uint32   `json:"index"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
	Args     []uint32 `json:"args,omitempty"`
}

// BinarySelector matches the path of the process's binary.
type BinarySelector struct {
	Operator       string   `json:"operator"`
	Values         []string `json:"values"`
	FollowChildren bool     `json:"followChildren,omitempty"`
}

// NamespaceSelector matches a Linux namespace of the process.
type NamespaceSelector struct {
	Namespace string   `json:"namespace"`
	Operator  string   `json:"operator"`
	Values    []string `json:"values"`
}

// CapabilitySelector matches the process's capabilities.
type CapabilitySelector struct {
	Type                  string   `json:"type,omitempty"`
	Operator              string   `json:"operator"`
	IsNamespaceCapability bool     `json:"isNamespaceCapability,omitempty"`
	Values                []string `json:"values"`
}

// ActionSelector is what happens when a selector matches.
type ActionSelector struct {
	Action           string `json:"action"`
	ArgFd            uint32 `json:"argFd,omitempty"`
	ArgName          uint32 `json:"argName,omitempty"`
	ArgURL           string `json:"argUrl,omitempty"`
	ArgFqdn          string `json:"argFqdn,omitempty"`
	ArgError         int32  `json:"argError,omitempty"`
	ArgSig           uint32 `json:"argSig,omitempty"`
	ArgSock          uint32 `json:"argSock,omitempty"`
	RateLimit        string `json:"rateLimit,omitempty"`
	RateLimitScope   string `json:"rateLimitScope,omitempty"`
	KernelStackTrace bool   `json:"kernelStackTrace,omitempty"`
	UserStackTrace   bool   `json:"userStackTrace,omitempty"`
	ImaHash          bool   `json:"imaHash,omitempty"`
	// ArgIndex and ArgValue are the operands of the Set action, ArgRegs
	// those of a uprobe Override (Tetragon's CRD).
	ArgIndex uint32   `json:"argIndex,omitempty"`
	ArgValue uint32   `json:"argValue,omitempty"`
	ArgRegs  []string `json:"argRegs,omitempty"`
}

// ListSpec names a set of values that calls can refer to ("list:NAME").
type ListSpec struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Values    []string `json:"values,omitempty"`
	Pattern   *string  `json:"pattern,omitempty"`
	Validated bool     `json:"validated,omitempty"`
}

// OptionSpec is a policy-wide option (e.g. policy-mode).
type OptionSpec struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LabelSelector is Kubernetes' label selector.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one expression of a LabelSelector.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}
