package policy

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// valueProblem checks one value of a filter; it returns "" when the value
// is fine and the reason otherwise.
func valueProblem(op string, kind valueKind, t argTypeInfo, val string, lists map[string]*ListSpec) string {
	if strings.Contains(val, "${") && !(kind == valuesTyped && t.class == classString) {
		// Tetragon's quickstart ships policies with ${PODCIDR} for the
		// user to substitute; say so rather than "not a CIDR".
		return fmt.Sprintf("%q is an unsubstituted template variable, not a value: substitute it (e.g. with envsubst) before loading", val)
	}
	switch kind {
	case valuesTyped:
		switch t.class {
		case classString:
			return stringValueProblem(op, t, val)
		case classCaps:
			return capsValueProblem(val)
		default:
			return intValueProblem(val, t)
		}
	case valuesMap:
		if name, ok := strings.CutPrefix(val, "list:"); ok {
			l := lists[name]
			switch {
			case l == nil:
				return fmt.Sprintf("list %q is not declared in spec.lists", name)
			case l.Type != "syscalls" && l.Type != "generated_syscalls":
				return fmt.Sprintf("list %q is of type %q; %s looks up syscall lists only", name, l.Type, op)
			}
			// Any integer argument takes the syscalls' numbers, as in
			// Tetragon (a raw_syscalls id read as uint64, say).
			return ""
		}
		if strings.Contains(val, ":") {
			return rangeProblem(val, t, true)
		}
		return intValueProblem(val, t)
	case valuesRange:
		if !strings.Contains(val, ":") {
			return fmt.Sprintf("%q is not a range: want min:max", val)
		}
		return rangeProblem(val, t, false)
	case valuesAddr:
		if strings.Contains(val, "/") {
			if _, err := netip.ParsePrefix(val); err != nil {
				return fmt.Sprintf("%q is not a CIDR (such as 10.0.0.0/8 or fd00::/8)", val)
			}
			return ""
		}
		if _, err := netip.ParseAddr(val); err != nil {
			return fmt.Sprintf("%q is not an IP address or CIDR", val)
		}
	case valuesPort:
		return namedRangeProblem(val, "port", nil, "", 65535)
	case valuesProtocol:
		return namedRangeProblem(val, "protocol", protocolNumbers, "IPPROTO_TCP", 65535)
	case valuesFamily:
		return namedRangeProblem(val, "address family", familyNumbers, "AF_INET", 65535)
	case valuesState:
		return namedRangeProblem(val, "TCP state", tcpStates, "TCP_ESTABLISHED", 255)
	case valuesSubstring:
		switch {
		case val == "":
			return "empty"
		case len(val) > MaxSubstringLen:
			return fmt.Sprintf("%d bytes, at most %d (MaxSubstringLen)", len(val), MaxSubstringLen)
		}
	case valuesFileType:
		if _, ok := fileTypes[val]; !ok {
			return fmt.Sprintf("%q is not a file type (known: %s)", val, strings.Join(sortedKeys(fileTypes), ", "))
		}
	}
	return ""
}

func stringValueProblem(op string, t argTypeInfo, val string) string {
	n := len(val)
	if t.canonical == "string" {
		// Tetragon drops trailing NULs of string values ("/etc/passwd\0").
		n = len(strings.TrimRight(val, "\x00"))
	}
	limit, name := MaxStringLen, "MaxStringLen"
	switch op {
	case "Prefix", "NotPrefix":
		limit, name = MaxPrefixLen, "MaxPrefixLen"
	case "Postfix", "NotPostfix":
		limit, name = MaxPostfixLen, "MaxPostfixLen"
	}
	switch {
	case n == 0:
		return "empty: a string filter needs a value"
	case n > limit:
		return fmt.Sprintf("%d bytes, at most %d for %s (%s)", n, limit, op, name)
	}
	return ""
}

// intValueProblem checks an integer for the width and sign of the type;
// like Tetragon it reads 0x (hex), 0o or 0 (octal) and 0b (binary) prefixes.
func intValueProblem(val string, t argTypeInfo) string {
	if _, err := parseTypedInt(val, t); err != nil {
		return fmt.Sprintf("%q is not a %s value (%s)", val, t.canonical, intRangeText(t))
	}
	return ""
}

// parseTypedInt reads an integer of the type's width; unsigned types are
// returned as their bit pattern.
func parseTypedInt(val string, t argTypeInfo) (int64, error) {
	bits := t.bits
	if bits == 0 {
		bits = 64
	}
	if t.signed {
		return strconv.ParseInt(val, 0, bits)
	}
	u, err := strconv.ParseUint(val, 0, bits)
	return int64(u), err
}

func intRangeText(t argTypeInfo) string {
	bits := t.bits
	if bits == 0 {
		bits = 64
	}
	if t.signed {
		return fmt.Sprintf("an integer from %d to %d", int64(-1)<<(bits-1), int64(1<<(bits-1)-1))
	}
	if bits == 64 {
		return "an integer from 0 to 18446744073709551615"
	}
	return fmt.Sprintf("an integer from 0 to %d", uint64(1)<<bits-1)
}

// rangeProblem checks "min:max" for the type. Map-backed ranges (InMap)
// are stored value by value, so their width is bounded; Tetragon swaps a
// reversed map range, while an InRange bound pair must be in order.
func rangeProblem(val string, t argTypeInfo, mapped bool) string {
	lo, hi, _ := strings.Cut(val, ":")
	if strings.Contains(hi, ":") {
		return fmt.Sprintf("%q is not a range: want min:max", val)
	}
	a, errA := parseTypedInt(lo, t)
	b, errB := parseTypedInt(hi, t)
	if errA != nil || errB != nil {
		return fmt.Sprintf("%q is not a range of %s values (min:max, each %s)", val, t.canonical, intRangeText(t))
	}
	less := a <= b
	if !t.signed {
		less = uint64(a) <= uint64(b)
	}
	if !mapped {
		if !less {
			return fmt.Sprintf("%q is empty: min is above max", val)
		}
		return ""
	}
	if !less {
		a, b = b, a
	}
	width := uint64(b) - uint64(a) + 1
	if width == 0 || width > MaxRangeWidth {
		return fmt.Sprintf("%q spans more than %d values (MaxRangeWidth)", val, MaxRangeWidth)
	}
	return ""
}

// mapEntries counts the integers an InMap or NotInMap filter puts in the
// kernel's set: a range its width, a list its values, a number one. Values
// with a problem of their own count one.
func mapEntries(values []string, t argTypeInfo, lists map[string]*ListSpec) uint64 {
	var n uint64
	for _, val := range values {
		if name, ok := strings.CutPrefix(val, "list:"); ok {
			if l := lists[name]; l != nil {
				n += uint64(len(l.Values))
			}
			continue
		}
		lo, hi, isRange := strings.Cut(val, ":")
		if !isRange || rangeProblem(val, t, true) != "" {
			n++
			continue
		}
		a, _ := parseTypedInt(lo, t)
		b, _ := parseTypedInt(hi, t)
		if t.signed && a > b || !t.signed && uint64(a) > uint64(b) {
			a, b = b, a
		}
		n += uint64(b) - uint64(a) + 1
	}
	return n
}

// namedRangeProblem checks a port, protocol, family or state: a number up
// to max, a name from names, or a "min:max" range of numbers.
func namedRangeProblem(val, what string, names map[string]uint64, example string, max uint64) string {
	if _, ok := names[val]; ok {
		return ""
	}
	bad := func() string {
		if names != nil {
			return fmt.Sprintf("%q is not a %s: want a name such as %s, a number from 0 to %d or a range min:max", val, what, example, max)
		}
		return fmt.Sprintf("%q is not a %s: want a number from 0 to %d or a range min:max", val, what, max)
	}
	lo, hi, isRange := strings.Cut(val, ":")
	a, err := strconv.ParseUint(lo, 10, 64)
	if err != nil || a > max {
		return bad()
	}
	if isRange {
		b, err := strconv.ParseUint(hi, 10, 64)
		if err != nil || b > max {
			return bad()
		}
	}
	return ""
}

// capsValueProblem checks a capability set value: a number (a mask) or
// capability names separated by commas ("CAP_SYS_ADMIN,CAP_BPF").
func capsValueProblem(val string) string {
	if _, ok := capsMask(val); !ok {
		return fmt.Sprintf("%q is neither a capability mask nor capability names separated by commas", val)
	}
	return ""
}

// rateLimitProblem checks Tetragon's rateLimit: a positive number of
// seconds, or a number with unit s, m or h ("10s", "1m", "2h").
func rateLimitProblem(s string) string {
	num := s
	switch s[len(s)-1] {
	case 's', 'S', 'm', 'M', 'h', 'H':
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 {
		return "want a positive number of seconds, or a number with unit s, m or h (10s, 1m, 2h)"
	}
	return ""
}

func parseUintValue(v string, bits int) (uint64, error) {
	return strconv.ParseUint(v, 10, bits)
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
