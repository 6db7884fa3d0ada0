package main

import (
	"bytes"
	"debug/elf"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/vigilsec/vigil/internal/testenv"
)

//go:embed init.sh.tmpl
var initScript string

var initTemplate = template.Must(template.New("init").Parse(initScript))

// guestHostname is the VM's host name, which the receiver puts in exec ids.
const guestHostname = "vigil-vm"

// guestRepo is where the guest holds its copy of the repository: the test
// binaries in their package directories, testdata/ and testData.
const guestRepo = "/vigil/repo"

// testBinary is one `go test -c` binary and the package it tests.
type testBinary struct {
	Name string // e.g. "internal-kernel": its row prefix and file name
	Pkg  string // e.g. "./internal/kernel/"
	Path string // the binary on the host
}

// excludedTest is a test the lane does not run; see notInVM.
type excludedTest struct {
	Pkg, Test, Reason string
	// ExceptOwnRun: the kernels that name their own tests (kernel.Run)
	// run it.
	ExceptOwnRun bool
}

// excludedOn reports whether e is left out on a kernel; ownRun: the kernel
// runs its own selection of tests.
func (e excludedTest) excludedOn(ownRun bool) bool { return !(e.ExceptOwnRun && ownRun) }

// skipFlag returns the -test.skip flag that leaves out pkg's tests in
// notInVM, or "".
func skipFlag(pkg string, ownRun bool) string {
	var names []string
	for _, e := range notInVM {
		if filepath.Clean(e.Pkg) == filepath.Clean(pkg) && e.excludedOn(ownRun) {
			names = append(names, regexp.QuoteMeta(e.Test))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "-test.skip=^(" + strings.Join(names, "|") + ")$"
}

// guestDir is the package directory in the guest, where the binary runs.
func (b testBinary) guestDir() string { return path.Join(guestRepo, filepath.ToSlash(b.Pkg)) }

// binaryName turns a package path into a file name: "./internal/kernel/"
// becomes "internal-kernel".
func binaryName(pkg string) string {
	return strings.ReplaceAll(strings.Trim(filepath.Clean(pkg), "./"), "/", "-")
}

// writeInitramfs writes the guest's root filesystem to out: a Debian-like
// merged-/usr tree with busybox-static for the userland and hostBinaries
// (dash as /bin/sh, as on Debian), /init, and under guestRepo each test
// binary in its package directory beside a copy of its testdata/, and the
// paths of testData.
func writeInitramfs(out, repo string, g guest, bins []testBinary, testArgs []string, ownRun bool, configs map[string]string, warn io.Writer) error {
	// The applet list comes from this machine's busybox, the same Debian
	// version as a sysroot's (lane.go's sysrootPackages).
	hostBusybox, err := staticBusybox()
	if err != nil {
		return err
	}
	busybox := hostBusybox
	if !g.arch.Native {
		busybox = filepath.Join(g.sysroot, "bin", "busybox")
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	c := newCPIOWriter(f)
	tmp, err := os.MkdirTemp("", "vmtest-c-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"usr", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "dev", "proc", "sys",
		"tmp", "run", "etc", "root", "boot", guestRepo} {
		c.dir(d, 0o755)
	}
	// /boot/config-<lane name>: init exports the booted kernel's as
	// VIGIL_KERNEL_CONFIG (it reads the name from vigil.kernel=).
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		data, err := os.ReadFile(configs[name])
		if err != nil {
			return fmt.Errorf("the config of kernel %s: %w", name, err)
		}
		c.bytes("boot/config-"+name, 0o644, data)
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		c.symlink(l, "usr/"+l)
	}
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	c.charDev("dev/console", 0o600, 5, 1)

	// The host's programs, with the shared objects they need, where Debian
	// has them; busybox provides what they do not.
	copied := map[string]bool{}
	for _, name := range hostBinaries {
		p, err := g.lookPath(name)
		if err != nil {
			return err
		}
		if err := g.addDynamicELF(c, p, "usr/bin/"+name, copied); err != nil {
			return err
		}
	}
	if slices.Contains(hostBinaries, "dash") {
		c.symlink("usr/bin/sh", "dash")
	}

	c.file("usr/bin/busybox", 0o755, busybox)
	applets, err := exec.Command(hostBusybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", hostBusybox, err)
	}
	for _, a := range strings.Fields(string(applets)) {
		dir, name := filepath.Split(a)
		var guest string
		switch dir {
		case "bin/", "usr/bin/":
			guest = "usr/bin/" + name
		case "sbin/", "usr/sbin/":
			guest = "usr/sbin/" + name
		default:
			continue
		}
		if name == "sh" || name == "busybox" || copied[guest] {
			continue
		}
		c.symlink(guest, "/usr/bin/busybox")
	}

	c.bytes("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"))
	c.bytes("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	c.bytes("etc/hostname", 0o644, []byte(guestHostname+"\n"))
	c.bytes("etc/hosts", 0o644, []byte("127.0.0.1\tlocalhost\n127.0.1.1\t"+guestHostname+"\n::1\tlocalhost\n"))

	type run struct {
		Name, Dir string
		Args      []string
	}
	var runs []run
	for _, b := range bins {
		args := slices.Clone(testArgs)
		if skip := skipFlag(b.Pkg, ownRun); skip != "" {
			args = append(args, skip)
		}
		for _, a := range args {
			if strings.Contains(a, "'") {
				return fmt.Errorf("test flag %q: single quotes are not supported", a)
			}
		}
		runs = append(runs, run{b.Name, b.guestDir(), args})
	}
	var script bytes.Buffer
	if err := initTemplate.Execute(&script, struct {
		Hostname, Results string
		Binaries          []run
	}{guestHostname, g.arch.Results, runs}); err != nil {
		return err
	}
	c.bytes("init", 0o755, script.Bytes())
	// vigil, built beside the test binaries for the guest (buildVigil).
	if len(bins) > 0 {
		c.file("usr/bin/vigil", 0o755, filepath.Join(filepath.Dir(bins[0].Path), "vigil"))
	}

	for _, b := range bins {
		dir := b.guestDir()
		c.dir(dir, 0o755)
		c.file(dir+"/"+b.Name+".test", 0o755, b.Path)
		if err := addTree(c, filepath.Join(repo, b.Pkg, "testdata"), dir+"/testdata"); err != nil {
			return err
		}
		if err := addCTargets(c, g.arch.CC, filepath.Join(repo, b.Pkg, "testdata"), dir+"/testdata/"+testenv.PrebuiltDir, tmp); err != nil {
			return err
		}
	}
	for _, d := range testData {
		host := filepath.Join(repo, d)
		if _, err := os.Stat(host); err != nil {
			fmt.Fprintf(warn, "vmtest: warning: test data %s is not on this machine, the guest will lack it: %v\n", d, err)
			continue
		}
		guest := path.Join(guestRepo, filepath.ToSlash(d))
		if !strings.HasPrefix(guest, "/vigil/") {
			return fmt.Errorf("test data %s lies outside the guest's /vigil", d)
		}
		if err := addTree(c, host, guest); err != nil {
			return err
		}
	}
	if err := c.close(); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return f.Close()
}

// addCTargets builds the C targets of a test package's testdata (*.c) on
// this machine, static, into the guest's dir: the guest has no compiler,
// and tests take them from there (testenv.PrebuiltC).
func addCTargets(c *cpioWriter, cc, testdata, dir, tmp string) error {
	srcs, err := filepath.Glob(filepath.Join(testdata, "*.c"))
	if err != nil || len(srcs) == 0 {
		return err
	}
	c.dir(dir, 0o755)
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".c")
		out := filepath.Join(tmp, filepath.Base(filepath.Dir(testdata))+"-"+name)
		if err := testenv.CompileCWith(cc, src, out, "-static"); err != nil {
			return fmt.Errorf("building the guest's C target %s: %w", src, err)
		}
		c.file(dir+"/"+name, 0o755, out)
	}
	return nil
}

// A guest is the architecture an initramfs is for, and the sysroot its
// programs come from: "" for this machine's own.
type guest struct {
	arch    guestArch
	sysroot string
}

// lookPath finds a program of hostBinaries for the guest.
func (g guest) lookPath(name string) (string, error) {
	if g.sysroot == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s not found on this machine (vmtest/lane.go hostBinaries)", name)
		}
		return p, nil
	}
	for _, dir := range []string{"usr/bin", "bin", "usr/sbin", "sbin"} {
		p := filepath.Join(g.sysroot, dir, name)
		if _, err := os.Lstat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not in the %s sysroot %s (vmtest/lane.go sysrootPackages)", name, g.arch.GOARCH, g.sysroot)
}

// evalSymlinks resolves p's links, an absolute target being the guest's:
// under the sysroot, when there is one.
func (g guest) evalSymlinks(p string) (string, error) {
	if g.sysroot == "" {
		return filepath.EvalSymlinks(p)
	}
	for range 40 {
		target, err := os.Readlink(p)
		if err != nil {
			if _, serr := os.Stat(p); serr != nil {
				return "", serr
			}
			return p, nil // not a link
		}
		if filepath.IsAbs(target) {
			p = filepath.Join(g.sysroot, target)
		} else {
			p = filepath.Join(filepath.Dir(p), target)
		}
	}
	return "", fmt.Errorf("%s: too many links", p)
}

// staticBusybox finds busybox and makes sure it needs no shared objects.
func staticBusybox() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", errors.New("busybox not found: run scripts/install-deps.sh vm")
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked: the guest needs busybox-static (scripts/install-deps.sh vm)", p)
		}
	}
	return p, nil
}

// addDynamicELF adds the host's ELF executable or library src at guest, then
// its program interpreter and every shared object it needs, at the same paths
// under /usr (the guest's /lib and /lib64 are links into /usr).
func (g guest) addDynamicELF(c *cpioWriter, src, guest string, added map[string]bool) error {
	if added[guest] {
		return nil
	}
	added[guest] = true
	real, err := g.evalSymlinks(src)
	if err != nil {
		return err
	}
	c.file(guest, 0o755, real)
	f, err := elf.Open(real)
	if err != nil {
		return err
	}
	defer f.Close()
	var deps []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return err
			}
			deps = append(deps, strings.TrimRight(string(b), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	for _, lib := range libs {
		p, err := g.findLibrary(lib)
		if err != nil {
			return fmt.Errorf("%s needs %s: %w", src, lib, err)
		}
		deps = append(deps, p)
	}
	for _, d := range deps {
		// d is the guest's path (the interpreter) or the sysroot's
		// (findLibrary): the guest's path is d without the sysroot.
		guestPath := strings.TrimPrefix(d, g.sysroot)
		host := filepath.Join(g.sysroot, guestPath)
		to := strings.TrimPrefix(guestPath, "/")
		if !strings.HasPrefix(to, "usr/") {
			to = "usr/" + to
		}
		if err := g.addDynamicELF(c, host, to, added); err != nil {
			return err
		}
	}
	return nil
}

// findLibrary looks for a shared object where Debian's ld.so of the
// guest's architecture does without a cache.
func (g guest) findLibrary(name string) (string, error) {
	for _, dir := range g.arch.LibDirs {
		p := filepath.Join(g.sysroot, dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("not found in the library directories")
}

// addTree copies the host file or directory src, if it exists, to guest.
func addTree(c *cpioWriter, src, guest string) error {
	st, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && !st.IsDir() {
		c.file(guest, uint32(st.Mode().Perm()), src)
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		g := filepath.ToSlash(filepath.Join(guest, rel))
		switch {
		case d.IsDir():
			c.dir(g, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			c.symlink(g, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			c.file(g, uint32(info.Mode().Perm()), p)
		}
		return nil
	})
}
