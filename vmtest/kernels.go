package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// A kernel is one Debian kernel package the lane boots.
type kernel struct {
	// Name is the kernel's column in the results table and its -kernels name.
	Name string
	// Suite is the archive suite that serves Package at Version, e.g.
	// "bookworm-security" or "trixie-backports".
	Suite string
	// Package holds the compressed kernel image: linux-image-* up to 6.x,
	// linux-binary-* from 7.x on.
	Package string
	// Version is the exact Debian version of Package.
	Version string
	// Arch is the Debian (and Go) architecture: "amd64" when empty.
	Arch string
	// Run, when set, is the tests this kernel runs (go test -run) unless
	// -run names others: a kernel that lacks what most tests need runs
	// the ones that check what it offers.
	Run string
}

// spec is k's package as apt-get download takes it.
func (k kernel) spec() string { return debSpec(k.Package, k.arch(), k.Version) }

func (k kernel) arch() string {
	if k.Arch == "" {
		return "amd64"
	}
	return k.Arch
}

func debSpec(pkg, arch, version string) string { return pkg + ":" + arch + "=" + version }

// debianKeyring verifies every suite the lane reads; debian-archive-keyring
// ships it, with the keys of the current and the next release.
const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// aptRepo fetches kernel packages with apt-get, through a sources list, lists
// directory and cache of its own under dir: the machine's apt configuration
// and state are read for proxies only, and never written.
type aptRepo struct {
	dir            string
	mirror         string // for every suite but *-security
	securityMirror string
	log            io.Writer
	// updated is the sources list the lists were last refreshed for in
	// this run: kernels and a sysroot missing together refresh once.
	updated string
}

// laneSuites returns the suites of the kernels in lane.go, and extra.
func laneSuites(extra ...string) []string {
	suites := slices.Clone(extra)
	for _, k := range kernels {
		suites = append(suites, k.Suite)
	}
	for _, p := range sysrootPackages {
		suites = append(suites, p.Suite)
	}
	slices.Sort(suites)
	return slices.Compact(suites)
}

// sourcesList returns the lane's sources.list: one line per suite, main only.
func (a *aptRepo) sourcesList(suites []string) string {
	var b strings.Builder
	for _, s := range suites {
		uri := a.mirror
		if strings.HasSuffix(s, "-security") {
			uri = a.securityMirror
		}
		fmt.Fprintf(&b, "deb [arch=%s signed-by=%s] %s %s main\n", strings.Join(laneArches(), ","), debianKeyring, uri, s)
	}
	return b.String()
}

// options points apt at the lane's own files. Dir::Etc::Parts is an empty
// directory so that the machine's apt.conf.d hooks (appstream's
// Post-Invoke-Success, extra index targets) do not run; the proxy settings
// from there are carried over by machineProxyOptions.
func (a *aptRepo) options() []string {
	opts := []string{
		"Dir::Etc::SourceList=" + filepath.Join(a.dir, "sources.list"),
		"Dir::Etc::SourceParts=" + filepath.Join(a.dir, "empty"),
		"Dir::Etc::Parts=" + filepath.Join(a.dir, "empty"),
		"Dir::Etc::Preferences=/dev/null",
		"Dir::Etc::PreferencesParts=" + filepath.Join(a.dir, "empty"),
		"Dir::State=" + filepath.Join(a.dir, "state"),
		"Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"Dir::State::Status=/dev/null",
		"Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"APT::Architecture=amd64",
		"APT::Architectures=" + strings.Join(laneArches(), ","),
		"Acquire::Languages=none",
		// As root apt would download as _apt, which cannot write here.
		"APT::Sandbox::User=root",
	}
	opts = append(opts, machineProxyOptions()...)
	var args []string
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	return args
}

// machineProxyOptions returns the machine's apt proxy and date-check
// settings, so that the lane downloads the way apt-get install does here.
func machineProxyOptions() []string {
	out, err := exec.Command("apt-config", "dump").Output()
	if err != nil {
		return nil
	}
	var opts []string
	for _, line := range strings.Split(string(out), "\n") {
		key, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		lower := strings.ToLower(key)
		if !strings.HasPrefix(lower, "acquire::") {
			continue
		}
		if !strings.Contains(lower, "proxy") && lower != "acquire::check-valid-until" && lower != "acquire::check-date" {
			continue
		}
		value = strings.TrimSuffix(strings.TrimSpace(value), ";")
		value = strings.Trim(value, `"`)
		opts = append(opts, key+"="+value)
	}
	return opts
}

func (a *aptRepo) aptGet(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", append(append(a.options(), "-q"), args...)...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// update writes the sources list for suites and refreshes the lists.
func (a *aptRepo) update(ctx context.Context, suites []string) error {
	list := a.sourcesList(suites)
	if list == a.updated {
		return nil
	}
	for _, d := range []string{"empty", "state", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(a.dir, "sources.list"), []byte(list), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(a.log, "vmtest: apt-get update (private lists in %s)\n", a.dir)
	if err := a.aptGet(ctx, a.dir, "update"); err != nil {
		return err
	}
	a.updated = list
	return nil
}

// download fetches the pinned packages (debSpec) into dir.
func (a *aptRepo) download(ctx context.Context, dir string, specs []string) error {
	args := append([]string{"download"}, specs...)
	err := a.aptGet(ctx, dir, args...)
	if err != nil && strings.Contains(err.Error(), "was not found") {
		return fmt.Errorf("%w\nthe archive no longer serves a pinned version: update the kernel's line in vmtest/lane.go (README.md, \"Kernel VM lane\")", err)
	}
	return err
}

// find prints the packages whose names match pattern, with every version
// and the suite that serves it, in the lane's suites and extra: the fields of
// a kernels line in lane.go.
func (a *aptRepo) find(ctx context.Context, w io.Writer, pattern string, extra []string) error {
	if err := a.update(ctx, laneSuites(extra...)); err != nil {
		return err
	}
	search := exec.CommandContext(ctx, "apt-cache", append(a.options(), "search", "--names-only", pattern)...)
	out, err := search.Output()
	if err != nil {
		return fmt.Errorf("apt-cache search: %w", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, _, ok := strings.Cut(line, " - "); ok {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no package matches %q in %s", pattern, strings.Join(laneSuites(extra...), ", "))
	}
	sort.Strings(names)
	madison := exec.CommandContext(ctx, "apt-cache", append(append(a.options(), "madison"), names...)...)
	if out, err = madison.Output(); err != nil {
		return fmt.Errorf("apt-cache madison: %w", err)
	}
	// "pkg | version | http://deb.debian.org/debian trixie-backports/main amd64 Packages"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			continue
		}
		src := strings.Fields(f[2])
		if len(src) < 2 {
			continue
		}
		suite, _, _ := strings.Cut(src[1], "/")
		fmt.Fprintf(w, "{Name: \"?\", Suite: %q, Package: %q, Version: %q},\n", suite, strings.TrimSpace(f[0]), strings.TrimSpace(f[1]))
	}
	return nil
}

// kernelImage is a kernel ready to boot, in the lane's cache.
type kernelImage struct {
	kernel
	// Boot is what QEMU's -kernel gets: the uncompressed vmlinux when it has
	// a PVH entry point, which skips decompression under TCG, else vmlinuz.
	Boot string
	// Config is the kernel's /boot/config-*, when the package ships it.
	Config string
	// Unpacked is how long extracting it from its package took; zero when
	// it came from the cache.
	Unpacked time.Duration
}

// cacheDir is where k's unpacked image lives: one directory per exact version.
func (k kernel) cacheDir(cache string) string {
	return filepath.Join(cache, "kernels", k.Package+"_"+k.Version)
}

// cachedImage returns k's image from the cache, if a run unpacked it.
func cachedImage(cache string, k kernel) (kernelImage, bool) {
	dir := k.cacheDir(cache)
	img := kernelImage{kernel: k}
	for _, name := range []string{"vmlinux", "vmlinuz"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			img.Boot = filepath.Join(dir, name)
			break
		}
	}
	if img.Boot == "" {
		return img, false
	}
	if _, err := os.Stat(filepath.Join(dir, "config")); err == nil {
		img.Config = filepath.Join(dir, "config")
	}
	return img, true
}

// fetchKernels returns a bootable image of every kernel in ks, downloading
// and unpacking those that are not in the cache yet, and how long apt took
// (zero when every kernel was cached).
func fetchKernels(ctx context.Context, repo *aptRepo, cache string, ks []kernel) ([]kernelImage, time.Duration, error) {
	var images []kernelImage
	var missing []kernel
	for _, k := range ks {
		if img, ok := cachedImage(cache, k); ok {
			images = append(images, img)
		} else {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return images, 0, nil
	}
	start := time.Now()
	// The lists are refreshed on every download: the pinned versions must
	// be checked against what the archive serves today.
	if err := repo.update(ctx, laneSuites()); err != nil {
		return nil, 0, err
	}
	tmp, err := os.MkdirTemp(cache, "download-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(tmp)
	for _, k := range missing {
		fmt.Fprintf(repo.log, "vmtest: downloading %s=%s from %s\n", k.Package, k.Version, k.Suite)
	}
	var specs []string
	for _, k := range missing {
		specs = append(specs, k.spec())
	}
	if err := repo.download(ctx, tmp, specs); err != nil {
		return nil, 0, err
	}
	downloaded := time.Since(start)
	for _, k := range missing {
		t0 := time.Now()
		deb, err := findDeb(tmp, k)
		if err != nil {
			return nil, 0, err
		}
		img, err := unpackKernel(deb, cache, k)
		if err != nil {
			return nil, 0, fmt.Errorf("kernel %s: %w", k.Name, err)
		}
		img.Unpacked = time.Since(t0)
		images = append(images, img)
	}
	// Keep the order of ks.
	sort.SliceStable(images, func(i, j int) bool { return indexOf(ks, images[i].kernel) < indexOf(ks, images[j].kernel) })
	return images, downloaded, nil
}

func indexOf(ks []kernel, k kernel) int {
	for i, x := range ks {
		if x == k {
			return i
		}
	}
	return len(ks)
}

// findDeb finds the file apt-get download wrote for k: the name escapes
// the version's epoch colon, so match on the package name.
func findDeb(dir string, k kernel) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, k.Package+"_*.deb"))
	if len(matches) != 1 {
		return "", fmt.Errorf("apt-get download left %d files for %s in %s", len(matches), k.Package, dir)
	}
	return matches[0], nil
}

// unpackKernel takes the compressed image (and config) out of deb, extracts
// the ELF vmlinux from it, and stores them in k's cache directory. The
// directory is renamed into place last, so an interrupted run leaves no
// half-unpacked kernel behind.
func unpackKernel(deb, cache string, k kernel) (kernelImage, error) {
	dir := k.cacheDir(cache)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return kernelImage{}, err
	}
	defer os.RemoveAll(tmp)
	files, err := debFiles(deb, func(name string) string {
		base := path.Base(name)
		switch {
		case strings.HasPrefix(base, "vmlinuz"):
			return "vmlinuz"
		case strings.HasPrefix(name, "./boot/config-"):
			return "config"
		}
		return ""
	})
	if err != nil {
		return kernelImage{}, fmt.Errorf("reading %s: %w", filepath.Base(deb), err)
	}
	bz, ok := files["vmlinuz"]
	if !ok {
		return kernelImage{}, fmt.Errorf("%s holds no vmlinuz: is %s the package with the kernel image?", filepath.Base(deb), k.Package)
	}
	if err := os.WriteFile(filepath.Join(tmp, "vmlinuz"), bz, 0o644); err != nil {
		return kernelImage{}, err
	}
	if cfg, ok := files["config"]; ok {
		if err := os.WriteFile(filepath.Join(tmp, "config"), cfg, 0o644); err != nil {
			return kernelImage{}, err
		}
	}
	// arm64's vmlinuz is an uncompressed Image that QEMU boots as it is;
	// x86's bzImage boots faster from the vmlinux inside.
	var vmlinux []byte
	pvh := false
	if k.arch() == "amd64" {
		if vmlinux, err = extractVmlinux(bz); err != nil {
			return kernelImage{}, fmt.Errorf("extracting vmlinux: %w", err)
		}
		if pvh, err = hasPVHEntry(vmlinux); err != nil {
			return kernelImage{}, err
		}
	}
	if pvh {
		if err := os.WriteFile(filepath.Join(tmp, "vmlinux"), vmlinux, 0o644); err != nil {
			return kernelImage{}, err
		}
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return kernelImage{}, err
	}
	img, _ := cachedImage(cache, k)
	return img, nil
}

// debFiles returns the contents of the files in deb's data archive that
// want names, keyed by that name. dpkg-deb does the decompression, whatever
// compressor the package was built with.
func debFiles(deb string, want func(name string) string) (map[string][]byte, error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	tr := tar.NewReader(out)
	var readErr error
	for {
		h, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if key := want(h.Name); key != "" {
			if files[key], err = io.ReadAll(tr); err != nil {
				readErr = err
				break
			}
		}
	}
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return files, readErr
}
