package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The lists in lane.go are edited by hand, one line at a time: `make test`
// catches a broken line before the VM lane does.
func TestLaneKernelsArePinnedAndUnique(t *testing.T) {
	names := map[string]bool{}
	for _, k := range kernels {
		if k.Name == "" || k.Suite == "" || k.Package == "" || k.Version == "" {
			t.Errorf("%+v: every field is needed", k)
		}
		if names[k.Name] {
			t.Errorf("two kernels named %q", k.Name)
		}
		names[k.Name] = true
		if !strings.HasPrefix(k.Package, "linux-image-") && !strings.HasPrefix(k.Package, "linux-binary-") {
			t.Errorf("%s: %s is not a kernel image package", k.Name, k.Package)
		}
	}
}

func TestLaneTestPackagesExist(t *testing.T) {
	bins := map[string]bool{}
	for _, pkg := range testPackages {
		if !strings.HasPrefix(pkg, "./") {
			t.Errorf("%q: write packages relative to the repository root, as ./dir/", pkg)
		}
		if _, err := os.Stat(filepath.Join("..", pkg)); err != nil {
			t.Errorf("%q: %v", pkg, err)
		}
		if name := binaryName(pkg); bins[name] {
			t.Errorf("%q: a second package maps to %s", pkg, name)
		} else {
			bins[name] = true
		}
	}
}

func TestSourcesListSendsSecuritySuitesToTheSecurityArchive(t *testing.T) {
	a := &aptRepo{mirror: "http://m/debian", securityMirror: "http://m/debian-security"}
	got := a.sourcesList([]string{"bookworm-security", "trixie-backports"})
	want := "deb [arch=amd64,arm64 signed-by=" + debianKeyring + "] http://m/debian-security bookworm-security main\n" +
		"deb [arch=amd64,arm64 signed-by=" + debianKeyring + "] http://m/debian trixie-backports main\n"
	if got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
}

func TestBinaryName(t *testing.T) {
	for pkg, want := range map[string]string{
		"./internal/kernel/":       "internal-kernel",
		"./receiver/ebpfreceiver":  "receiver-ebpfreceiver",
		"./internal/policy/engine": "internal-policy-engine",
	} {
		if got := binaryName(pkg); got != want {
			t.Errorf("%s: %s, want %s", pkg, got, want)
		}
	}
}

func TestNotInVMNamesRealPackages(t *testing.T) {
	for _, e := range notInVM {
		if !slices.Contains(testPackages, e.Pkg) {
			t.Errorf("%s: %s is not in testPackages", e.Test, e.Pkg)
		}
		if e.Reason == "" {
			t.Errorf("%s: say why it cannot run in the VM", e.Test)
		}
	}
}

func TestSkipFlagMatchesTheExcludedTestsOnly(t *testing.T) {
	saved := notInVM
	defer func() { notInVM = saved }()
	notInVM = []excludedTest{{Pkg: "./a/", Test: "TestX", Reason: "r"}, {Pkg: "./a", Test: "TestY.Z", Reason: "r"}, {Pkg: "./b/", Test: "TestW", Reason: "r"},
		{Pkg: "./a/", Test: "TestV", Reason: "r", ExceptOwnRun: true}}
	if got, want := skipFlag("./a/", false), `-test.skip=^(TestX|TestY\.Z|TestV)$`; got != want {
		t.Errorf("skipFlag = %q, want %q", got, want)
	}
	// A kernel with its own selection runs TestV.
	if got, want := skipFlag("./a/", true), `-test.skip=^(TestX|TestY\.Z)$`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := skipFlag("./c/", false); got != "" {
		t.Errorf("a package with no exclusions got %s", got)
	}
}

// Every kernel of the lane has a guest architecture, and an emulated one
// gets more time.
func TestEveryKernelHasAGuestArchitecture(t *testing.T) {
	for _, k := range kernels {
		a, err := archOf(k)
		if err != nil {
			t.Fatal(err)
		}
		if a.GOARCH != k.arch() {
			t.Errorf("%s: guest %s, kernel %s", k.Name, a.GOARCH, k.arch())
		}
	}
	if got := guestArches["arm64"].scaled(35 * time.Minute); got <= 35*time.Minute {
		t.Errorf("arm64 guests get %s for a 35m test binary", got)
	}
	if got := guestArches["amd64"].scaled(35 * time.Minute); got != 35*time.Minute {
		t.Errorf("amd64 guests get %s for a 35m test binary", got)
	}
}

// TestKernelRunNamesTests: a kernel's own test selection compiles, and each
// name it lists exactly is a test of the lane's packages.
func TestKernelRunNamesTests(t *testing.T) {
	for _, k := range kernels {
		if k.Run == "" {
			continue
		}
		if _, err := regexp.Compile(k.Run); err != nil {
			t.Errorf("%s: Run: %v", k.Name, err)
			continue
		}
		names := strings.Split(strings.TrimSuffix(strings.TrimPrefix(k.Run, "^("), ")$"), "|")
		for _, n := range names {
			if strings.ContainsAny(n, ".*+?[") {
				continue
			}
			found := false
			for _, pkg := range testPackages {
				src, _ := filepath.Glob(filepath.Join("..", pkg, "*_test.go"))
				for _, f := range src {
					b, _ := os.ReadFile(f)
					if strings.Contains(string(b), "func "+n+"(t *testing.T)") {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("%s: Run names %s, which no test package of the lane has", k.Name, n)
			}
		}
	}
}
