package testenv

import (
	"bufio"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
)

// What a kernel built with a config offers, by the feature names of
// internal/kernel (kernel.Feature*): each a list of options that must all be
// y. The tests' expectation comes from the kernel's own build, not from the
// probes the code uses to decide what to refuse: if a probe regressed, a
// test judged by it would pass by refusing.
var featureOptions = map[string][]string{
	"kprobe":       {"CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS", "CONFIG_BPF_EVENTS"},
	"kprobe_multi": {"CONFIG_KPROBES", "CONFIG_FPROBE", "CONFIG_BPF_EVENTS"},
	// Trampolines: BPF's own, on ftrace's direct calls.
	"fentry": {"CONFIG_BPF_JIT", "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"},
	// fmod_ret on syscall functions needs them on the error injection list.
	"fmod_ret_syscalls":   {"CONFIG_BPF_JIT", "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", "CONFIG_FUNCTION_ERROR_INJECTION"},
	"bpf_override_return": {"CONFIG_KPROBES", "CONFIG_BPF_KPROBE_OVERRIDE"},
	// The BPF LSM, active by default (the lane boots without lsm=).
	"bpf_lsm": {"CONFIG_BPF_LSM", "CONFIG_BPF_JIT", "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"},
}

var (
	kconfigOnce sync.Once
	kconfig     map[string]string
	kconfigErr  error
)

// kernelConfig reads the config VIGIL_KERNEL_CONFIG names: the VM lane sets
// it to the booted kernel's, from its Debian package. Nil when unset.
func kernelConfig() (map[string]string, error) {
	kconfigOnce.Do(func() {
		path := os.Getenv("VIGIL_KERNEL_CONFIG")
		if path == "" {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			kconfigErr = err
			return
		}
		defer f.Close()
		kconfig = map[string]string{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
				kconfig[k] = strings.Trim(v, `"`)
			}
		}
		kconfigErr = sc.Err()
	})
	return kconfig, kconfigErr
}

// KernelHas says whether the running kernel offers a feature (a
// kernel.Feature* name), by its config when the VM lane provides it, else
// by what the code's own probe finds: on this machine the kernel's config
// may allow what its sandbox refuses (fentry and LSM programs get EPERM),
// so only the probe can tell, and a test judged by it is as good as the
// probe.
func KernelHas(tb testing.TB, feature string) bool {
	tb.Helper()
	cfg, err := kernelConfig()
	if err != nil {
		tb.Fatalf("VIGIL_KERNEL_CONFIG: %v", err)
	}
	if cfg == nil {
		return kernel.Probe().Has(feature)
	}
	opts, ok := featureOptions[feature]
	if !ok {
		tb.Fatalf("testenv.KernelHas: no kernel config options known for feature %q (featureOptions)", feature)
	}
	for _, o := range opts {
		if cfg[o] != "y" {
			return false
		}
	}
	if feature == "bpf_lsm" && !strings.Contains(","+cfg["CONFIG_LSM"]+",", ",bpf,") {
		return false
	}
	return true
}
