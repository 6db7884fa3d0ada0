package policy

import "strings"

// Op is a comparison a selector filter makes. The kernel's are numbered by
// bpf/hook_types.h's enum filter_op, from which op_gen.go is generated: the
// kernel reads an Op as it is. The Sock operators are compiled forms the
// kernel package turns into its comparisons on a field of the socket.
type Op uint8

// Tetragon's socket operators on a sock or sockaddr argument, each bound to
// the field it compares; numbered past any kernel comparison. The address
// operators hold IPv4 and IPv6 CIDRs in Filter.Strings. The others hold
// inclusive ranges in Filter.Ints, lo and hi in turn (a single value v is
// v, v), and match when the field is in one of them; their Not forms, when
// it is in none.
const (
	OpSockSAddr Op = 128 + iota
	OpSockNotSAddr
	OpSockDAddr
	OpSockNotDAddr
	OpSockSPort
	OpSockNotSPort
	OpSockDPort
	OpSockNotDPort
	OpSockProtocol
	OpSockFamily
	OpSockState
)

// StringSet is where the kernel keeps the strings of a string filter, and
// so how it compares them.
type StringSet uint8

const (
	// SetNone: the operator compares no strings.
	SetNone StringSet = iota
	// SetEqual holds whole strings (a hash set).
	SetEqual
	// SetPrefix holds prefixes (an LPM trie).
	SetPrefix
	// SetPostfix holds suffixes, reversed (an LPM trie).
	SetPostfix
	// SetAddr holds CIDRs (an LPM trie per address family).
	SetAddr
	// SetSubstring holds values the kernel looks for in the string.
	SetSubstring
)

// maxLen is the longest value the kernel's set holds, in bytes.
func (k StringSet) maxLen() int {
	switch k {
	case SetPrefix, SetPostfix:
		return kernelLpmStr
	case SetSubstring:
		return MaxSubstringLen
	}
	return MaxStringLen
}

// operator is everything Vigil knows of one selector operator, in one row:
// how Tetragon spells it, what it applies to and what values it takes
// (Validate), whether Vigil implements it (Supported), what it compiles to
// and how the kernel keeps its values (Compile, internal/kernel). Its
// kernel number is in bpf/hook_types.h, and its test in bpf/hook_match.h.
type operator struct {
	name    string
	aliases []string // the other spellings Tetragon accepts
	// op is what the operator compiles to; 0 for an operator Vigil does
	// not implement yet, which Supported refuses.
	op Op
	// set is where the kernel keeps its strings; ints marks an operator
	// on integers. Equal has both.
	set  StringSet
	ints bool
	// binaries: also an operator of matchBinaries and
	// matchParentBinaries; args: of matchArgs, matchReturnArgs, matchData.
	binaries, args bool
	operatorInfo
	// sock is set for the operators of sock arguments.
	sock *sockOperand
}

// sockOperand is what a sock operator's values may be.
type sockOperand struct {
	names   map[string]uint64 // nil: numbers only
	example string            // one of names
	max     uint64
	priv    bool // SPortPriv and the like: the privileged ports, no values
}

// What argument filters on each class of argument are described as.
const (
	descCompare  = "compares integers, strings, paths and capability sets"
	descStrings  = "matches strings, paths and buffers"
	descInts     = "compares integers"
	descSock     = "matches sock, skb and socket arguments"
	descSockaddr = "matches sock, skb, socket and sockaddr arguments"
)

var (
	classesCompare = []argClass{classInt, classString, classCaps}
	classesString  = []argClass{classString}
	classesInt     = []argClass{classInt}
	classesSock    = []argClass{classSock}
)

// operators is the table. Aliases are Tetragon's CRD enum and its parser's
// lower-case forms.
var operators = []operator{
	// matchPIDs, matchNamespaces and matchCapabilities take In and NotIn
	// too.
	{name: "In", op: OpIn, set: SetEqual, binaries: true},
	{name: "NotIn", op: OpNotIn, set: SetEqual, binaries: true},
	{name: "Equal", aliases: []string{"eq"}, op: OpEqual, set: SetEqual, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesCompare, description: descCompare}},
	{name: "NotEqual", aliases: []string{"neq"}, op: OpNotEqual, set: SetEqual, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesCompare, description: descCompare}},
	{name: "Prefix", aliases: []string{"prefix"}, op: OpPrefix, set: SetPrefix, args: true, binaries: true,
		operatorInfo: operatorInfo{classes: classesString, description: descStrings}},
	{name: "NotPrefix", aliases: []string{"notprefix"}, op: OpNotPrefix, set: SetPrefix, args: true, binaries: true,
		operatorInfo: operatorInfo{classes: classesString, description: descStrings}},
	{name: "Postfix", aliases: []string{"postfix"}, op: OpPostfix, set: SetPostfix, args: true, binaries: true,
		operatorInfo: operatorInfo{classes: classesString, description: descStrings}},
	{name: "NotPostfix", aliases: []string{"notpostfix"}, op: OpNotPostfix, set: SetPostfix, args: true, binaries: true,
		operatorInfo: operatorInfo{classes: classesString, description: descStrings}},
	{name: "GT", aliases: []string{"gt", "GreaterThan"}, op: OpGT, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesInt, description: descInts}},
	{name: "LT", aliases: []string{"lt", "LessThan"}, op: OpLT, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesInt, description: descInts}},
	{name: "Mask", aliases: []string{"mask"}, op: OpMask, ints: true, args: true,
		operatorInfo: operatorInfo{classes: []argClass{classInt, classCaps}, description: "tests bits of integers and capability sets"}},
	{name: "InMap", op: OpInMap, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesInt, values: valuesMap, description: "looks integers up in a set"}},
	{name: "NotInMap", op: OpNotInMap, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesInt, values: valuesMap, description: "looks integers up in a set"}},
	{name: "InRange", op: OpInRange, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesInt, values: valuesRange, description: descInts}},
	{name: "NotInRange", op: OpNotInRange, ints: true, args: true,
		operatorInfo: operatorInfo{classes: classesInt, values: valuesRange, description: descInts}},
	{name: "SAddr", aliases: []string{"saddr", "Saddr"}, op: OpSockSAddr, set: SetAddr, args: true, sock: &sockOperand{},
		operatorInfo: operatorInfo{classes: classesSock, sockaddr: true, values: valuesAddr, description: descSockaddr}},
	{name: "NotSAddr", aliases: []string{"notsaddr", "NotSaddr"}, op: OpSockNotSAddr, set: SetAddr, args: true, sock: &sockOperand{},
		operatorInfo: operatorInfo{classes: classesSock, sockaddr: true, values: valuesAddr, description: descSockaddr}},
	{name: "DAddr", aliases: []string{"daddr", "Daddr"}, op: OpSockDAddr, set: SetAddr, args: true, sock: &sockOperand{},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesAddr, description: descSock}},
	{name: "NotDAddr", aliases: []string{"notdaddr", "NotDaddr"}, op: OpSockNotDAddr, set: SetAddr, args: true, sock: &sockOperand{},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesAddr, description: descSock}},
	{name: "SPort", aliases: []string{"sport", "Sport"}, op: OpSockSPort, args: true, sock: &sockOperand{max: 65535},
		operatorInfo: operatorInfo{classes: classesSock, sockaddr: true, values: valuesPort, description: descSockaddr}},
	{name: "NotSPort", aliases: []string{"notsport", "NotSport"}, op: OpSockNotSPort, args: true, sock: &sockOperand{max: 65535},
		operatorInfo: operatorInfo{classes: classesSock, sockaddr: true, values: valuesPort, description: descSockaddr}},
	{name: "DPort", aliases: []string{"dport", "Dport"}, op: OpSockDPort, args: true, sock: &sockOperand{max: 65535},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesPort, description: descSock}},
	{name: "NotDPort", aliases: []string{"notdport", "NotDport"}, op: OpSockNotDPort, args: true, sock: &sockOperand{max: 65535},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesPort, description: descSock}},
	{name: "SPortPriv", aliases: []string{"sportpriv", "SportPriv"}, op: OpSockSPort, args: true, sock: &sockOperand{priv: true},
		operatorInfo: operatorInfo{classes: classesSock, sockaddr: true, values: valuesNone, description: descSockaddr}},
	{name: "NotSPortPriv", aliases: []string{"notsportpriv", "NotSportPriv"}, op: OpSockNotSPort, args: true, sock: &sockOperand{priv: true},
		operatorInfo: operatorInfo{classes: classesSock, sockaddr: true, values: valuesNone, description: descSockaddr}},
	{name: "DPortPriv", aliases: []string{"dportpriv", "DportPriv"}, op: OpSockDPort, args: true, sock: &sockOperand{priv: true},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesNone, description: descSock}},
	{name: "NotDPortPriv", aliases: []string{"notdportpriv", "NotDportPriv"}, op: OpSockNotDPort, args: true, sock: &sockOperand{priv: true},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesNone, description: descSock}},
	{name: "Protocol", aliases: []string{"protocol"}, op: OpSockProtocol, args: true,
		sock:         &sockOperand{names: protocolNumbers, example: "IPPROTO_TCP", max: 65535},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesProtocol, description: descSock}},
	{name: "Family", aliases: []string{"family"}, op: OpSockFamily, args: true,
		sock:         &sockOperand{names: familyNumbers, example: "AF_INET", max: 65535},
		operatorInfo: operatorInfo{classes: classesSock, sockaddr: true, values: valuesFamily, description: descSockaddr}},
	{name: "State", aliases: []string{"state"}, op: OpSockState, args: true,
		sock:         &sockOperand{names: tcpStates, example: "TCP_SYN_SENT", max: 255},
		operatorInfo: operatorInfo{classes: classesSock, values: valuesState, description: descSock}},

	{name: "CapabilitiesGained", op: OpCapabilitiesGained, args: true,
		operatorInfo: operatorInfo{classes: []argClass{classCaps}, values: valuesNone, description: "compares two capability sets"}},
	{name: "SubString", op: OpSubString, set: SetSubstring, args: true,
		operatorInfo: operatorInfo{onlyTypes: []string{"string", "char_buf"}, values: valuesSubstring, description: "matches string and char_buf arguments"}},
	{name: "SubStringIgnCase", op: OpSubStringIgnCase, set: SetSubstring, args: true,
		operatorInfo: operatorInfo{onlyTypes: []string{"string", "char_buf"}, values: valuesSubstring, description: "matches string and char_buf arguments"}},
	// Tetragon takes FileType on file and path arguments; Vigil reads the
	// inode of every argument that is a file.
	{name: "FileType", op: OpFileType, args: true,
		operatorInfo: operatorInfo{onlyTypes: fileArgTypes, values: valuesFileType, description: "matches file arguments (file, path, dentry, fd, linux_binprm, kiocb)"}},
	{name: "NotFileType", op: OpNotFileType, args: true,
		operatorInfo: operatorInfo{onlyTypes: fileArgTypes, values: valuesFileType, description: "matches file arguments (file, path, dentry, fd, linux_binprm, kiocb)"}},
}

// fileArgTypes are the argument types read as a file, whose inode's type
// FileType matches.
var fileArgTypes = []string{"file", "path", "dentry", "fd", "linux_binprm", "kiocb"}

// operatorsBySpelling finds a row by its name or any alias.
var operatorsBySpelling = func() map[string]*operator {
	m := map[string]*operator{}
	for i := range operators {
		o := &operators[i]
		for _, s := range append([]string{o.name}, o.aliases...) {
			if m[s] != nil {
				panic("policy: operator spelling " + s + " twice in the table")
			}
			m[s] = o
		}
	}
	return m
}()

// lookupOperator returns the row of an operator given in any spelling.
func lookupOperator(spelling string) (*operator, bool) {
	o, ok := operatorsBySpelling[spelling]
	return o, ok
}

// supported reports whether Vigil's engine implements the operator.
func (o *operator) supported() bool { return o.op != 0 }

// CanonicalOperator returns the canonical name of a matchArgs,
// matchReturnArgs or matchData operator given in any spelling Tetragon
// accepts ("gt" and "GreaterThan" are "GT", "saddr" is "SAddr"). ok is
// false when op is not such an operator (In and NotIn belong to matchPIDs
// and matchBinaries).
func CanonicalOperator(op string) (canonical string, ok bool) {
	o, ok := lookupOperator(op)
	if !ok || !o.args {
		return "", false
	}
	return o.name, true
}

// binaryOperator returns the canonical name of a matchBinaries operator.
func binaryOperator(op string) (*operator, bool) {
	o, ok := lookupOperator(op)
	if !ok || !o.binaries {
		return nil, false
	}
	return o, true
}

// binaryOperatorNames lists the matchBinaries operators, for errors.
var binaryOperatorNames = func() string {
	var names []string
	for _, o := range operators {
		if o.binaries {
			names = append(names, o.name)
		}
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}()

// opName is how errors name a compiled operator.
func opName(op Op) string {
	for _, o := range operators {
		if o.op == op {
			return o.name
		}
	}
	return kernelOpNames[op]
}

// Set is where the kernel keeps the strings of a filter with this operator.
func (op Op) Set() StringSet {
	switch op {
	case OpAddr, OpNotAddr:
		// What the kernel compiles the sock address operators to.
		return SetAddr
	}
	return opSets[op]
}

var opSets = func() map[Op]StringSet {
	m := map[Op]StringSet{}
	for _, o := range operators {
		if o.op != 0 && o.set != SetNone {
			m[o.op] = o.set
		}
	}
	return m
}()
