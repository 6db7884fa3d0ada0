package kernel

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// BpfAttr is a bpf_attr argument: the program a bpf(BPF_PROG_LOAD) call
// loads, as the verifier gets it (bpf_check).
type BpfAttr struct {
	ProgType uint32
	InsnCnt  uint32
	ProgName string
}

// String renders the program as its type, name and size:
// "BPF_PROG_TYPE_KPROBE my_prog (12 instructions)".
func (a BpfAttr) String() string {
	return fmt.Sprintf("%s %s (%d instructions)", enumName("bpf_prog_type", a.ProgType), a.ProgName, a.InsnCnt)
}

// BpfMap is a bpf_map argument: a map being created.
type BpfMap struct {
	MapType                        uint32
	KeySize, ValueSize, MaxEntries uint32
	MapName                        string
}

// String renders the map as its type, name and sizes:
// "BPF_MAP_TYPE_HASH my_map (key 4, value 8, 1024 entries)".
func (m BpfMap) String() string {
	return fmt.Sprintf("%s %s (key %d, value %d, %d entries)", enumName("bpf_map_type", m.MapType), m.MapName,
		m.KeySize, m.ValueSize, m.MaxEntries)
}

// PerfEvent is a perf_event argument: an event being opened. KprobeFunc
// is the function of a kprobe event, which ProbeOffset is an offset into.
type PerfEvent struct {
	Type        uint32
	Config      uint64
	ProbeOffset uint64
	KprobeFunc  string
}

// String renders the event as its type and config, and the function of a
// kprobe event: "PERF_TYPE_SOFTWARE config 0", "type 6 config 0 kprobe
// do_sys_openat2+0x0". A type past the kernel's enum is a dynamic PMU
// (kprobe, uprobe), whose number the kernel chooses at boot.
func (e PerfEvent) String() string {
	s := fmt.Sprintf("%s config %d", enumName("perf_type_id", e.Type), e.Config)
	if e.KprobeFunc != "" {
		s += fmt.Sprintf(" kprobe %s+%#x", e.KprobeFunc, e.ProbeOffset)
	}
	return s
}

// decodeBpfObject decodes an argument read_bpf_object wrote.
func decodeBpfObject(typ uint8, b []byte) (fmt.Stringer, error) {
	switch typ {
	case argBpfAttr, argBpfProg:
		r, err := argLayout[sensorBpfAttrArg](b, "bpf_attr")
		if err != nil {
			return nil, err
		}
		return BpfAttr{ProgType: r.ProgType, InsnCnt: r.InsnCnt, ProgName: cString(r.ProgName[:])}, nil
	case argBpfMap:
		r, err := argLayout[sensorBpfMapArg](b, "bpf_map")
		if err != nil {
			return nil, err
		}
		return BpfMap{MapType: r.MapType, KeySize: r.KeySize, ValueSize: r.ValueSize, MaxEntries: r.MaxEntries,
			MapName: cString(r.MapName[:])}, nil
	default:
		r, err := argLayout[sensorPerfEventArg](b, "perf_event")
		if err != nil {
			return nil, err
		}
		return PerfEvent{Type: r.Type, Config: r.Config, ProbeOffset: r.ProbeOffset, KprobeFunc: cString(r.KprobeFunc[:])}, nil
	}
}

// cString is the NUL-terminated string at the start of b.
func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// enumNames are the names of the kernel's enums, from its BTF, by enum
// name: this kernel's own names for program types, map types and perf
// types, including ones newer than Vigil.
var enumNames = struct {
	sync.Mutex
	m map[string]map[uint32]string
}{m: map[string]map[uint32]string{}}

// enumName names value in the kernel's enum typ, or gives its number where
// the kernel has no name for it (or no BTF).
// EnumName names value in the kernel's enum typ ("bpf_cmd"), from its BTF;
// "type N" when the kernel has no such value.
func EnumName(typ string, value uint32) string { return enumName(typ, value) }

func enumName(typ string, value uint32) string {
	enumNames.Lock()
	names, ok := enumNames.m[typ]
	if !ok {
		names = map[uint32]string{}
		if spec, err := btf.LoadKernelSpec(); err == nil {
			var e *btf.Enum
			if spec.TypeByName(typ, &e) == nil {
				for _, v := range e.Values {
					// Not the count: PERF_TYPE_MAX is the first number
					// of the dynamic PMUs.
					if !strings.HasPrefix(v.Name, "__") && !strings.HasSuffix(v.Name, "_MAX") {
						names[uint32(v.Value)] = v.Name
					}
				}
			}
		}
		enumNames.m[typ] = names
	}
	enumNames.Unlock()
	if n, ok := names[value]; ok {
		return n
	}
	return "type " + strconv.FormatUint(uint64(value), 10)
}
