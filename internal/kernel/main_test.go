package kernel_test

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a helper process instead of running the
// tests: for what a test needs a process to do after its exec, in an order
// no shell command gives.
const helperEnv = "VIGIL_KERNEL_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		runHelper(h, os.Args[1:])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper runs helper name. "ns-changes" opens its arguments in turn on
// one thread; an argument "unshare:uts" or "unshare:net" moves the thread
// into a new namespace of that type instead.
func runHelper(name string, args []string) {
	if name != "ns-changes" {
		panic("unknown helper " + name)
	}
	runtime.LockOSThread()
	for _, a := range args {
		if t, ok := strings.CutPrefix(a, "unshare:"); ok {
			flag := map[string]int{"uts": unix.CLONE_NEWUTS, "net": unix.CLONE_NEWNET}[t]
			if err := unix.Unshare(flag); err != nil {
				panic(err)
			}
			continue
		}
		f, err := os.Open(a)
		if err != nil {
			panic(err)
		}
		f.Close()
	}
}
