// Command vmtest is the kernel VM lane (`make vmtest`): it boots each Debian
// kernel of lane.go under QEMU (TCG, no KVM needed) with an initramfs that
// holds the test binaries of lane.go, runs them there as root with CI=true,
// and prints a kernel x test table. It exits 1 if any test or any boot failed.
//
// Kernels and built pieces are cached under $XDG_CACHE_HOME/vigil/vmtest
// (~/.cache/vigil/vmtest); a warm run downloads nothing. Each run's logs
// (console, results, QEMU) are in build/vmtest/<kernel>/.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		os.Exit(1)
	}
}

type options struct {
	kernels        string
	run            string
	archRun        string
	testTimeout    time.Duration
	vm             vmOptions
	jobs           int
	cache          string
	out            string
	mirror         string
	securityMirror string
	verbose        bool
	corpusDoc      string
	find           string
	suites         string
}

func run() error {
	cacheBase, err := os.UserCacheDir()
	if err != nil {
		// No HOME: the repository's own .cache/ (ignored by git).
		cacheBase = ".cache"
	}
	var o options
	flag.StringVar(&o.kernels, "kernels", "", "comma-separated kernel names from vmtest/lane.go (default: all)")
	flag.StringVar(&o.run, "run", "", "run only the tests matching this regexp (go test -run)")
	flag.StringVar(&o.archRun, "arch-run", "", "ARCH=REGEXP: on that architecture's kernels, run only the tests matching REGEXP instead (CI's arm64 subset)")
	// internal/kernel takes over 5 minutes under TCG on 6.1 since the IPv6,
	// InMap and TrackSock tests.
	flag.DurationVar(&o.testTimeout, "test-timeout", 35*time.Minute, "each test binary's -test.timeout (times the architecture's slowdown, vmtest/arch.go)")
	flag.DurationVar(&o.vm.Timeout, "timeout", 40*time.Minute, "wall-clock limit of one kernel's boot and tests (times the architecture's slowdown)")
	// One TCG thread runs both guest CPUs. With multi-threaded TCG, code
	// the kernel patches while another vCPU runs it (static keys flipped
	// by attaching a tracepoint) panics the guest at random ("Oops: int3"
	// in trace_syscall_enter, seen on 6.12 and 7.3); on a 2-CPU host one
	// thread is also no slower.
	flag.StringVar(&o.vm.Accel, "accel", "tcg,thread=single", "QEMU -accel (kvm where /dev/kvm works)")
	flag.IntVar(&o.vm.CPUs, "smp", 2, "guest CPUs")
	flag.IntVar(&o.vm.MemMiB, "mem", 2048, "guest memory in MiB")
	flag.IntVar(&o.jobs, "jobs", 1, "kernels booted at once (each TCG guest keeps -smp host CPUs busy)")
	flag.StringVar(&o.cache, "cache", filepath.Join(cacheBase, "vigil", "vmtest"), "cache of kernels and apt lists")
	flag.StringVar(&o.out, "out", filepath.Join("build", "vmtest"), "directory for test binaries, the initramfs and the guests' logs")
	flag.StringVar(&o.mirror, "mirror", "http://deb.debian.org/debian", "Debian archive")
	flag.StringVar(&o.securityMirror, "security-mirror", "http://deb.debian.org/debian-security", "Debian security archive")
	flag.BoolVar(&o.verbose, "v", false, "print each kernel's test output")
	flag.StringVar(&o.corpusDoc, "corpus-doc", "", "write the per-kernel table of the Tetragon examples here (a full run only)")
	flag.StringVar(&o.find, "find", "", "print the packages matching this regexp, as kernels lines for lane.go, and exit")
	flag.StringVar(&o.suites, "suites", "", "with -find: comma-separated suites to search besides lane.go's")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	// apt resolves relative Dir:: paths against its own directories.
	for _, d := range []*string{&o.cache, &o.out} {
		if *d, err = filepath.Abs(*d); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	apt := &aptRepo{dir: filepath.Join(o.cache, "apt"), mirror: o.mirror, securityMirror: o.securityMirror, log: os.Stderr}
	if o.find != "" {
		var extra []string
		if o.suites != "" {
			extra = strings.Split(o.suites, ",")
		}
		return apt.find(ctx, os.Stdout, o.find, extra)
	}
	ks, err := selectKernels(o.kernels)
	if err != nil {
		return err
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		return fmt.Errorf("run vmtest from the repository root (make vmtest)")
	}
	for _, tool := range []string{"dpkg-deb", "apt-get"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run scripts/install-deps.sh vm", tool)
		}
	}
	for _, d := range []string{o.cache, o.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	start := time.Now()

	// The architectures of the kernels asked for, in lane order.
	var arches []guestArch
	for _, k := range ks {
		a, err := archOf(k)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(arches, func(x guestArch) bool { return x.GOARCH == a.GOARCH }) {
			arches = append(arches, a)
		}
	}
	for _, a := range arches {
		if _, err := exec.LookPath(a.QEMU); err != nil {
			return fmt.Errorf("%s not found: run scripts/install-deps.sh vm", a.QEMU)
		}
	}

	// Kernels and test binaries are independent: fetch while building.
	var (
		images     []kernelImage
		sysroots   = map[string]string{}
		downloaded time.Duration
		fetchErr   error
		wg         sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		images, downloaded, fetchErr = fetchKernels(ctx, apt, o.cache, ks)
		for _, a := range arches {
			if fetchErr != nil || a.Native {
				continue
			}
			var took time.Duration
			sysroots[a.GOARCH], took, fetchErr = fetchSysroot(ctx, apt, o.cache, a)
			downloaded += took
		}
	}()
	bins := map[string][]testBinary{}
	var buildErr error
	for _, a := range arches {
		dir := filepath.Join(o.out, "bin", a.GOARCH)
		if bins[a.GOARCH], buildErr = buildTests(ctx, repo, dir, a.GOARCH); buildErr != nil {
			break
		}
		if buildErr = buildVigil(ctx, repo, dir, a.GOARCH); buildErr != nil {
			break
		}
	}
	built := time.Since(start)
	wg.Wait()
	if fetchErr != nil {
		return fetchErr
	}
	if buildErr != nil {
		return buildErr
	}
	ready := time.Since(start)

	archRun, archRegexp, _ := strings.Cut(o.archRun, "=")
	if o.archRun != "" && archRegexp == "" {
		return fmt.Errorf("-arch-run %q: want ARCH=REGEXP", o.archRun)
	}
	// ownRun: the kernel runs its own selection (kernel.Run).
	ownRun := func(a guestArch, k kernel) bool { return k.Run != "" && o.run == "" && a.GOARCH != archRun }
	testArgs := func(a guestArch, k kernel) []string {
		args := []string{"-test.timeout=" + a.scaled(o.testTimeout).String()}
		switch {
		case a.GOARCH == archRun:
			args = append(args, "-test.run="+archRegexp)
		case o.run != "":
			args = append(args, "-test.run="+o.run)
		case k.Run != "":
			args = append(args, "-test.run="+k.Run)
		}
		return args
	}
	// Each kernel's own config, where its package ships one: the tests'
	// oracle of what the kernel offers (testenv.KernelHas).
	configs := map[string]string{}
	for _, img := range images {
		if img.Config != "" {
			configs[img.Name] = img.Config
		}
	}
	// One initramfs per architecture and test selection: the tests'
	// arguments are in it.
	initramfs := map[string]string{}
	initramfsOf := func(img kernelImage) string {
		a, _ := archOf(img.kernel)
		return strings.Join(testArgs(a, img.kernel), " ") + "|" + a.GOARCH
	}
	for _, img := range images {
		key := initramfsOf(img)
		if _, ok := initramfs[key]; ok {
			continue
		}
		a, _ := archOf(img.kernel)
		name := "initramfs-" + a.GOARCH + ".cpio"
		if ownRun(a, img.kernel) {
			name = "initramfs-" + a.GOARCH + "-" + img.Name + ".cpio"
		}
		initramfs[key] = filepath.Join(o.out, name)
		g := guest{arch: a, sysroot: sysroots[a.GOARCH]}
		if err := writeInitramfs(initramfs[key], repo, g, bins[a.GOARCH], testArgs(a, img.kernel), ownRun(a, img.kernel), configs, os.Stderr); err != nil {
			return err
		}
	}

	reports := make([]*kernelReport, len(images))
	sem := make(chan struct{}, max(o.jobs, 1))
	for i, img := range images {
		// Taken here, not in the goroutine, so kernels boot in lane order.
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dir := filepath.Join(o.out, img.Name)
			os.MkdirAll(dir, 0o755)
			fmt.Fprintf(os.Stderr, "vmtest: booting %s (%s) ...\n", img.Name, filepath.Base(img.Boot))
			a, _ := archOf(img.kernel)
			vmo := o.vm
			vmo.Timeout = a.scaled(o.vm.Timeout)
			vm := bootVM(ctx, a, img.Boot, initramfs[initramfsOf(img)], dir, img.Name, vmo)
			r := parseResults(img, vm)
			r.addExcluded(bins[a.GOARCH], ownRun(a, img.kernel))
			reports[i] = r
			pass, fail, skip := r.counts()
			fmt.Fprintf(os.Stderr, "vmtest: %s done in %s: %d passed, %d failed, %d skipped\n",
				img.Name, vm.Elapsed.Round(100*time.Millisecond), pass, fail, skip)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	if o.verbose {
		for _, r := range reports {
			fmt.Printf("==== %s (%s)\n%s\n", r.Image.Name, r.Release, strings.ReplaceAll(string(r.Run.Results), "\r", ""))
		}
	}
	fmt.Println()
	printTable(os.Stdout, reports)
	printProbes(os.Stdout, reports)
	printTimings(os.Stdout, reports, built, downloaded, ready, time.Since(start))

	for _, r := range reports {
		if r.anyFail() {
			return fmt.Errorf("failures in the VM lane (logs in %s)", o.out)
		}
	}
	if o.corpusDoc != "" {
		return writeCorpusDoc(o.corpusDoc, reports)
	}
	return nil
}

// selectKernels picks the kernels of lane.go named in list, or all of them.
func selectKernels(list string) ([]kernel, error) {
	if list == "" {
		return kernels, nil
	}
	var ks []kernel
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(kernels, func(k kernel) bool { return k.Name == name })
		if i < 0 {
			var names []string
			for _, k := range kernels {
				names = append(names, k.Name)
			}
			return nil, fmt.Errorf("no kernel %q in vmtest/lane.go (have %s)", name, strings.Join(names, ", "))
		}
		ks = append(ks, kernels[i])
	}
	return ks, nil
}

// buildTests compiles the test binary of each package in testPackages,
// static (CGO_ENABLED=0) so that the guest needs no shared objects for it.
func buildTests(ctx context.Context, repo, dir, goarch string) ([]testBinary, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var bins []testBinary
	for _, pkg := range testPackages {
		b := testBinary{Name: binaryName(pkg), Pkg: pkg, Path: filepath.Join(dir, binaryName(pkg)+".test")}
		os.Remove(b.Path)
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", b.Path, pkg)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go test -c %s: %w", pkg, err)
		}
		if _, err := os.Stat(b.Path); err != nil {
			return nil, fmt.Errorf("go test -c %s wrote no binary: does the package have tests?", pkg)
		}
		bins = append(bins, b)
	}
	return bins, nil
}

// buildVigil builds the vigil CLI for the guests (vigil probe), as
// make dist does, into dir/vigil.
func buildVigil(ctx context.Context, repo, dir, goarch string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "vigil"), "./cmd/vigil")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/vigil for %s: %w", goarch, err)
	}
	return nil
}

// printTimings says where the time went: the budget in CI is 90 minutes.
func printTimings(w io.Writer, reports []*kernelReport, built, downloaded, ready, total time.Duration) {
	round := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	fmt.Fprintf(w, "\ntimings (host: %d CPUs):\n", runtime.NumCPU())
	fmt.Fprintf(w, "  test binaries built in %s\n", round(built))
	if downloaded > 0 {
		fmt.Fprintf(w, "  apt-get update and download took %s\n", round(downloaded))
	}
	fmt.Fprintf(w, "  kernels and binaries ready after %s\n", round(ready))
	for _, r := range reports {
		fetch := "from the cache"
		if r.Image.Unpacked > 0 {
			fetch = "unpacked in " + round(r.Image.Unpacked).String()
		}
		fmt.Fprintf(w, "  %-5s boot+tests %6s  (%s %s)\n", r.Image.Name, round(r.Run.Elapsed), filepath.Base(r.Image.Boot), fetch)
	}
	fmt.Fprintf(w, "  total %s\n", round(total))
}
