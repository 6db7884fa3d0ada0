package kernel

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/link"
	"github.com/vigilsec/vigil/internal/policy"
	"golang.org/x/sys/unix"
)

// tpField is one field of a tracepoint's format.
type tpField struct {
	decl    string // e.g. "const char * filename"
	offset  int
	size    int
	signed  bool
	dataLoc bool
}

// tracepointFormat reads a tracepoint's record layout from tracefs,
// mounting tracefs if nothing has.
func tracepointFormat(group, name string) ([]tpField, error) {
	if err := ensureMounted("tracefs", unix.TRACEFS_MAGIC, tracefsRoot); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(tracefsRoot, "events", group, name, "format"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("tracepoint %s/%s does not exist on this kernel", group, name)
		}
		return nil, err
	}
	defer f.Close()
	var fields []tpField
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var fld tpField
		for _, part := range strings.Split(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			switch k {
			case "field":
				fld.decl = v
				fld.dataLoc = strings.HasPrefix(v, "__data_loc")
			case "offset":
				fld.offset, _ = strconv.Atoi(v)
			case "size":
				fld.size, _ = strconv.Atoi(v)
			case "signed":
				fld.signed = v == "1"
			}
		}
		fields = append(fields, fld)
	}
	return fields, sc.Err()
}

// tracepointArgs fills the argument table of a tracepoint hook from the
// tracepoint's format: each argument's index is a field position.
func tracepointArgs(c *sensorHookConf, h *policy.Hook) error {
	group, name, _ := strings.Cut(h.Calls[0], "/")
	fields, err := tracepointFormat(group, name)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Path, err)
	}
	recSize := 0
	for i, a := range h.Args {
		if int(a.Index) >= len(fields) {
			return fmt.Errorf("%s.args[%d].index: %d, but %s has %d fields", h.Path, i, a.Index, h.Calls[0], len(fields))
		}
		fld := fields[a.Index]
		if a.Kind == policy.ArgAuto {
			// No type in the policy: the field's, from the format. The
			// hook's argument takes it, for the events.
			kind, err := autoFieldKind(fld)
			if err != nil {
				return fmt.Errorf("%s.args[%d].type: auto: %w", h.Path, i, err)
			}
			h.Args[i].Kind, a.Kind = kind, kind
			c.Args[i].Type = kernelArgKinds[kind]
		}
		ca := &c.Args[i]
		ca.Index = uint8(i)
		ca.Off = uint16(fld.offset)
		ca.Fsize = uint8(fld.size)
		recSize = max(recSize, fld.offset+fld.size)
		switch a.Kind {
		case policy.ArgInt:
			if fld.size != 1 && fld.size != 2 && fld.size != 4 && fld.size != 8 {
				return fmt.Errorf("%s.args[%d]: field %q of %d bytes is not an integer", h.Path, i, fld.decl, fld.size)
			}
			ca.Flags = 0
			if fld.signed {
				ca.Flags |= argfSigned
			}
			ca.Flags |= uint8(trailingZeros(uint8(fld.size))) << 1
		case policy.ArgString:
			switch {
			case fld.dataLoc:
				ca.Flags |= argfKernel | argfDataloc
				// The string follows the fixed fields: copy the
				// most the program allows.
				recSize = tpRecordMax
			case strings.Contains(fld.decl, "char *") || strings.Contains(fld.decl, "char*"):
				// Syscall tracepoints carry user pointers.
				if group != "syscalls" {
					ca.Flags |= argfKernel
				}
			default:
				return fmt.Errorf("%s.args[%d]: field %q is not a string", h.Path, i, fld.decl)
			}
		}
	}
	if recSize > tpRecordMax {
		return fmt.Errorf("%s: the fields read end at byte %d of the record; at most %d", h.Path, recSize, tpRecordMax)
	}
	if recSize == 0 {
		recSize = 8
	}
	c.RecSize = uint16(recSize)
	return nil
}

func trailingZeros(v uint8) int {
	n := 0
	for v > 1 {
		v >>= 1
		n++
	}
	return n
}

// tracepointKind attaches tracepoints as perf events, the hook's slot as
// the attach cookie (Linux 5.15).
type tracepointKind struct{}

func (tracepointKind) ownProbes() bool { return true }
func (tracepointKind) attachable(_ *Sensor, h *policy.Hook) error {
	return needCookie(h, "tracepoint hooks")
}

func (tracepointKind) attach(s *Sensor, ih *InstalledHook) error {
	progs, err := s.probeCollection()
	if err != nil {
		return err
	}
	h := ih.Hook
	group, name, _ := strings.Cut(h.Calls[0], "/")
	l, err := link.Tracepoint(group, name, progs.Tracepoint, &link.TracepointOptions{Cookie: uint64(ih.slot)})
	if err != nil {
		return fmt.Errorf("%s: attaching to tracepoint %s: %w", h.Path, h.Calls[0], err)
	}
	ih.links = append(ih.links, l)
	ih.Mechanism = "tracepoint"
	return nil
}

func (tracepointKind) mechanisms(fs Features) []HookMechanism {
	if !fs.Has(FeatureAttachCookie) {
		return []HookMechanism{missing("tracepoints", FeatureAttachCookie)}
	}
	return []HookMechanism{{Hook: "tracepoints", Mechanism: "tracepoint (perf event, attach cookie)"}}
}

// autoFieldKind is how a tracepoint field without a type in the policy
// (auto) is read, from its declaration in the format: a __data_loc or
// char pointer as a string, a 1, 2, 4 or 8 byte scalar as an integer.
func autoFieldKind(fld tpField) (policy.ArgKind, error) {
	switch {
	case fld.dataLoc || strings.Contains(fld.decl, "char *") || strings.Contains(fld.decl, "char*"):
		return policy.ArgString, nil
	case strings.Contains(fld.decl, "["):
		return 0, fmt.Errorf("field %q is an array, which no type reads; name one", fld.decl)
	case fld.size == 1 || fld.size == 2 || fld.size == 4 || fld.size == 8:
		return policy.ArgInt, nil
	}
	return 0, fmt.Errorf("field %q of %d bytes is neither an integer nor a string", fld.decl, fld.size)
}
