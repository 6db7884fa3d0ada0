package ebpfreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/event"
)

func (r record) strings(k string) []string {
	v, ok := r.lr.Attributes().Get(k)
	if !ok {
		return nil
	}
	var out []string
	for _, s := range v.Slice().All() {
		out = append(out, s.Str())
	}
	return out
}

// TestPolicyEventsCarryNamedStacks: a policy asking for stack traces gets
// them named on its events, and without addresses unless configured.
func TestPolicyEventsCarryNamedStacks(t *testing.T) {
	for _, expose := range []bool{false, true} {
		t.Run(fmt.Sprintf("expose_stack_addresses=%v", expose), func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "target")
			os.WriteFile(target, []byte("x"), 0o644)
			writePolicy(t, dir, "stacks.yaml", openatPolicy("open-stacks", target, "Post\n        kernelStackTrace: true\n        userStackTrace: true"))
			cfg := createDefaultConfig().(*Config)
			cfg.Policies = []string{filepath.Join(dir, "stacks.yaml")}
			cfg.ExposeStackAddresses = expose
			_, sink, _ := startReceiver(t, cfg)

			// This test opens the file: its own stack, in a Go binary
			// that is still running when the event is named.
			f, err := os.Open(target)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			// The first stack reads kallsyms and this binary's symbols:
			// a fraction of a second here, many under the VM lane's
			// emulation.
			if !appearsWithin(60*time.Second, sink, isEvent(event.NameProcessKprobe, os.Getpid())) {
				t.Fatal("no process.kprobe event within 60s")
			}
			ev, _ := findRecord(sink, isEvent(event.NameProcessKprobe, os.Getpid()))
			kernel, user := ev.strings(event.AttrKernelStackTrace), ev.strings(event.AttrUserStackTrace)
			exe, _ := os.Executable()
			for _, fr := range append(slices.Clone(kernel), user...) {
				if expose != strings.HasPrefix(fr, "0x") {
					t.Errorf("frame %q: address shown %v, want %v", fr, !expose, expose)
				}
			}
			if !slices.ContainsFunc(kernel, func(f string) bool { return strings.Contains(f, "do_syscall_64+0x") }) {
				t.Errorf("kernel stack %q: want do_syscall_64", kernel)
			}
			if !slices.ContainsFunc(user, func(f string) bool {
				return strings.Contains(f, "syscall.openat+0x") && strings.Contains(f, " ("+exe+"+0x")
			}) {
				t.Errorf("user stack %q: want syscall.openat in %s", user, exe)
			}
			line := event.Compact(ev.resource, ev.lr, false)
			if !strings.Contains(line, "\nKernel:\n   ") || !strings.Contains(line, "\nUser space:\n   ") {
				t.Errorf("compact output without its stacks:\n%s", line)
			}
			t.Logf("compact:\n%s", line)
		})
	}
}
