package kernel

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// Ring buffer samples come from Vigil's own programs, but a decoder that
// trusts a length field reads past its sample when a layout changes on one
// side only: every length is checked against the sample.

// hookSample is a hook record of the fixed part, with data after it and the
// lengths it claims.
func hookSample(dataLen, kstack, ustack uint16, data []byte) []byte {
	var r sensorHookRecord
	r.Hdr.Kind = recordHook
	r.DataLen, r.KstackLen, r.UstackLen = dataLen, kstack, ustack
	b := append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&r)), hookFixedSize)...)
	return append(b, data...)
}

// argHeader is one argument's header in a hook record's data.
func argHeader(typ byte, n uint16) []byte {
	h := []byte{typ, 0, 0, 0}
	binary.LittleEndian.PutUint16(h[2:], n)
	return h
}

func TestDecodeRefusesCraftedRecords(t *testing.T) {
	var d decoder
	execShort := make([]byte, execFixedSize-1)
	execShort[0] = recordExec
	var x sensorExecRecord
	x.Hdr.Kind = recordExec
	x.FilenameLen = 4096 // more than the sample holds
	execOverrun := append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&x)), execFixedSize)...)
	fork := make([]byte, 3)
	fork[0] = recordFork
	for _, c := range []struct {
		name   string
		sample []byte
		want   string
	}{
		{"empty", nil, "shorter than its header"},
		{"unknown kind", []byte{0xee, 1, 2, 3}, "unknown record kind 238"},
		{"truncated exec", execShort, "shorter than its header"},
		{"exec length past the sample", execOverrun, "overruns"},
		{"truncated fork", fork, "fork"},
		{"truncated hook", []byte{recordHook, 0}, "shorter than its header"},
		{"hook data past the sample", hookSample(64, 0, 0, make([]byte, 8)), "overrun"},
		{"hook stacks past the sample", hookSample(0, 16, 16, make([]byte, 24)), "overrun"},
		{"argument header cut", hookSample(2, 0, 0, []byte{1, 0}), "argument header"},
		{"argument past the data", hookSample(8, 0, 0, append(argHeader(0, 100), 0, 0, 0, 0)), "overruns"},
		{"integer of the wrong size", hookSample(8, 0, 0, append(argHeader(argInt, 4), 1, 2, 3, 4)), "integer of 4 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.decode(c.sample)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("decode: %v, want an error saying %q", err, c.want)
			}
		})
	}
	// A record that says what it holds decodes.
	rec, err := d.decode(hookSample(12, 0, 0, append(argHeader(argInt, 8), 42, 0, 0, 0, 0, 0, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if h := rec.(*HookRecord); len(h.Args) != 1 || h.Args[0].Int != 42 {
		t.Errorf("decoded %+v, want one integer argument 42", h)
	}
}

// FuzzDecode: no sample makes the decoder panic or read past the sample.
//
//	go test ./internal/kernel -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	var x sensorExecRecord
	x.Hdr.Kind = recordExec
	x.FilenameLen, x.ArgsLen = 4, 6
	exec := append(append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&x)), execFixedSize)...), "/bin\x00ls\x00-l\x00"...)
	f.Add(exec)
	f.Add(hookSample(12, 0, 0, append(argHeader(argInt, 8), 42, 0, 0, 0, 0, 0, 0, 0)))
	f.Add(hookSample(9, 8, 0, append(append(argHeader(0, 5), "/etc/"...), 1, 2, 3, 4, 5, 6, 7, 8)))
	for _, kind := range []byte{recordFork, recordExit, recordConnectDenied} {
		f.Add(append([]byte{kind}, make([]byte, 64)...))
	}
	var d decoder
	f.Fuzz(func(t *testing.T, sample []byte) {
		rec, err := d.decode(sample)
		if err == nil && rec == nil {
			t.Fatal("no record and no error")
		}
		if err != nil && errors.Is(err, errShortRecord) && len(sample) >= execFixedSize && len(sample) >= hookFixedSize {
			t.Fatalf("%d bytes called short: %v", len(sample), err)
		}
	})
}
