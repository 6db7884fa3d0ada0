// Package redact hides secrets in command lines before any exporter sees
// them, the way Tetragon's redaction filters do: a filter names the
// binaries it applies to and regular expressions whose capture groups are
// secrets; each captured span is replaced with Mask.
package redact

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces every redacted span (Tetragon's).
const Mask = "*****"

// Filter redacts the captures of Redact in the arguments of the Binaries
// (exact paths; empty for every binary).
type Filter struct {
	Binaries []string
	Redact   []*regexp.Regexp
}

// Defaults are the filters of the usual ways secrets reach a command line:
// password, token and key flags and assignments, credentials in URLs,
// authorization headers, and AWS access key ids.
var Defaults = []Filter{{Redact: mustCompile(
	`(?i)(?:^|\s)--?(?:password|passwd|pass|pwd|secret|token|api[-_]?key|access[-_]?key|secret[-_]?key|private[-_]?key|auth[-_]?token|client[-_]?secret)(?:=|\s+)(\S+)`,
	`(?i)(?:^|\s)[a-z0-9_]*(?:password|passwd|secret|token|api_?key)=(\S+)`,
	`[a-zA-Z][a-zA-Z0-9+.-]*://[^:@/\s]+:([^@/\s]+)@`,
	`(?i)authorization:\s*(?:bearer|basic|token)\s+(\S+)`,
	`\b((?:AKIA|ASIA)[0-9A-Z]{16})\b`,
)}}

func mustCompile(exprs ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(exprs))
	for i, e := range exprs {
		out[i] = regexp.MustCompile(e)
	}
	return out
}

// Compile compiles a filter's expressions; each must have a capture group,
// the part it hides. Errors name the expression by index.
func Compile(exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, len(exprs))
	for i, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("redact[%d]: %w", i, err)
		}
		if re.NumSubexp() == 0 {
			return nil, fmt.Errorf("redact[%d]: %q has no capture group: nothing to hide", i, e)
		}
		out[i] = re
	}
	return out, nil
}

// Redactor applies filters.
type Redactor struct {
	filters []Filter
}

// New returns a Redactor of filters; nil filters redact nothing.
func New(filters []Filter) *Redactor { return &Redactor{filters: filters} }

// Args returns args of binary with every span a filter captures replaced
// with Mask; args itself when nothing matched. The expressions see the
// arguments joined by spaces, as the command line reads, so a flag and
// its value in two arguments ("--password", "x") are found too.
func (r *Redactor) Args(binary string, args []string) []string {
	if r == nil || len(r.filters) == 0 || len(args) == 0 {
		return args
	}
	joined := strings.Join(args, " ")
	var spans [][2]int
	for _, f := range r.filters {
		if len(f.Binaries) > 0 && !slices.Contains(f.Binaries, binary) {
			continue
		}
		for _, re := range f.Redact {
			for _, m := range re.FindAllStringSubmatchIndex(joined, -1) {
				for g := 2; g+1 < len(m); g += 2 {
					if m[g] >= 0 && m[g+1] > m[g] {
						spans = append(spans, [2]int{m[g], m[g+1]})
					}
				}
			}
		}
	}
	if len(spans) == 0 {
		return args
	}
	// Overlapping captures (two filters on one secret) are one span.
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	merged := spans[:1]
	for _, s := range spans[1:] {
		if last := &merged[len(merged)-1]; s[0] < last[1] {
			last[1] = max(last[1], s[1])
		} else {
			merged = append(merged, s)
		}
	}
	out := make([]string, len(args))
	start := 0
	for i, a := range args {
		end := start + len(a)
		var b strings.Builder
		pos := start
		for _, s := range merged {
			lo, hi := max(s[0], start), min(s[1], end)
			if lo >= hi {
				continue
			}
			b.WriteString(joined[pos:lo])
			b.WriteString(Mask)
			pos = hi
		}
		b.WriteString(joined[pos:end])
		out[i] = b.String()
		start = end + 1
	}
	return out
}
