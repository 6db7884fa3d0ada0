package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A guestArch is what booting and filling a guest of one architecture
// takes. amd64 guests run this machine's own programs; guests of another
// architecture get theirs from Debian's packages of that architecture,
// unpacked into a sysroot (sysrootPackages).
type guestArch struct {
	// GOARCH is also Debian's name of the architecture.
	GOARCH string
	QEMU   string
	// Machine is QEMU's machine options, before the common ones.
	Machine []string
	// Console is the kernel's console device; Results the guest's device
	// that carries the test output to the host. x86's PC has a second
	// serial port for it; arm64's virt machine has one PL011, which then
	// carries both, the kernel printing only errors there (loglevel=3).
	Console, Results string
	Cmdline          string
	// CC builds the C targets of the tests, static, for the guest.
	CC string
	// LibDirs are where the architecture's ld.so looks for shared objects
	// without a cache, relative to the sysroot.
	LibDirs []string
	// Native is set for this machine's architecture: its programs and
	// libraries are taken from / instead of a sysroot.
	Native bool
	// Slowdown scales -test-timeout and -timeout for its guests: TCG
	// emulates arm64 on x86-64 three to five times slower than x86-64
	// (6.12-arm64 against 6.1: TestInMap 42 s against 13 s,
	// TestSyscallHookFileType 184 s against 35 s).
	Slowdown int
}

// scaled is d for a guest of a.
func (a guestArch) scaled(d time.Duration) time.Duration {
	return d * time.Duration(max(a.Slowdown, 1))
}

var guestArches = map[string]guestArch{
	"amd64": {
		GOARCH: "amd64", QEMU: "qemu-system-x86_64",
		Console: "ttyS0", Results: "/dev/ttyS1",
		CC:      "gcc",
		LibDirs: []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"},
		Native:  true, Slowdown: 1,
	},
	"arm64": {
		GOARCH: "arm64", QEMU: "qemu-system-aarch64",
		Machine: []string{"-machine", "virt,gic-version=3"},
		Console: "ttyAMA0", Results: "/dev/ttyAMA0", Cmdline: "loglevel=3",
		CC:       "aarch64-linux-gnu-gcc",
		LibDirs:  []string{"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib"},
		Slowdown: 5,
	},
}

// archOf returns the guestArch of a kernel of the lane.
func archOf(k kernel) (guestArch, error) {
	name := k.Arch
	if name == "" {
		name = "amd64"
	}
	a, ok := guestArches[name]
	if !ok {
		return guestArch{}, fmt.Errorf("kernel %s: no guest architecture %q in vmtest/arch.go", k.Name, k.Arch)
	}
	return a, nil
}

// sharedSerial reports whether the console and the results share a port.
func (a guestArch) sharedSerial() bool { return "/dev/"+a.Console == a.Results }

// qemuArgs are the QEMU arguments that boot image with initramfs.
func (a guestArch) qemuArgs(o vmOptions, image, initramfs, name, console, results string) []string {
	args := append([]string{"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"}, a.Machine...)
	cmdline := "console=" + a.Console + " panic=-1 rdinit=/init"
	if a.Cmdline != "" {
		cmdline += " " + a.Cmdline
	}
	args = append(args,
		"-accel", o.Accel, "-cpu", "max",
		"-smp", strconv.Itoa(o.CPUs), "-m", strconv.Itoa(o.MemMiB),
		"-kernel", image, "-initrd", initramfs, "-append", cmdline+" vigil.kernel="+name,
	)
	if a.sharedSerial() {
		return append(args, "-chardev", "file,id=results,path="+qemuEscape(results), "-serial", "chardev:results")
	}
	return append(args,
		"-chardev", "file,id=console,path="+qemuEscape(console), "-serial", "chardev:console",
		"-chardev", "file,id=results,path="+qemuEscape(results), "-serial", "chardev:results",
	)
}

// sysrootDir is where the packages of a's sysroot are unpacked.
func sysrootDir(cache string, a guestArch) string {
	return filepath.Join(cache, "sysroot-"+a.GOARCH)
}

// A sysrootPackage is one Debian package of a guest architecture's sysroot.
type sysrootPackage struct{ Arch, Suite, Package, Version string }

// laneArches are the architectures of the lane's kernels.
func laneArches() []string {
	var out []string
	for _, k := range kernels {
		out = append(out, k.arch())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// fetchSysroot unpacks the sysrootPackages of a into the cache, once per
// set of versions, and returns the sysroot and how long it took (zero when
// it was cached).
func fetchSysroot(ctx context.Context, repo *aptRepo, cache string, a guestArch) (string, time.Duration, error) {
	var specs []string
	for _, p := range sysrootPackages {
		if p.Arch == a.GOARCH {
			specs = append(specs, debSpec(p.Package, p.Arch, p.Version))
		}
	}
	dir := sysrootDir(cache, a)
	stamp := strings.Join(specs, "\n") + "\n"
	if b, err := os.ReadFile(filepath.Join(dir, ".packages")); err == nil && string(b) == stamp {
		return dir, 0, nil
	}
	start := time.Now()
	if err := repo.update(ctx, laneSuites()); err != nil {
		return "", 0, err
	}
	tmp, err := os.MkdirTemp(cache, "download-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(repo.log, "vmtest: downloading the %s sysroot: %s\n", a.GOARCH, strings.Join(specs, " "))
	if err := repo.download(ctx, tmp, specs); err != nil {
		return "", 0, err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != len(specs) {
		return "", 0, fmt.Errorf("apt-get download left %d packages for the %d of the %s sysroot", len(debs), len(specs), a.GOARCH)
	}
	os.RemoveAll(dir)
	for _, deb := range debs {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
			return "", 0, fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(deb), err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".packages"), []byte(stamp), 0o644); err != nil {
		return "", 0, err
	}
	return dir, time.Since(start), nil
}
