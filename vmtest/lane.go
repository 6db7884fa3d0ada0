package main

// This file is the lane's whole configuration: which kernels boot, which test
// packages run inside each of them, and what the guest needs for them. Each
// addition is one line.

// kernels are the Debian kernels the lane boots, each pinned to the exact
// package version the archive served when it was added. A pinned version that
// the archive no longer serves is an error that names it: bump the line.
//
// To add a kernel, find its package with apt-cache against the lane's private
// lists (see README.md, "Kernel VM lane") and add one line.
var kernels = []kernel{
	// 5.10 LTS (Debian 11), the oldest kernel Vigil loads on: the compat
	// object (no bpf_loop), no attach cookies (kprobes, uprobes and
	// tracepoints are refused), no bpf_get_func_arg (nor fentry, fmod_ret
	// or LSM hooks), no kprobe.multi. It runs lts510Tests.
	{Name: "5.10", Suite: "bullseye-security", Package: "linux-image-5.10.0-46-cloud-amd64", Version: "5.10.262-1", Run: lts510Tests},
	// 6.1 LTS: no kprobe.multi (CONFIG_FPROBE is off), BPF LSM built in.
	{Name: "6.1", Suite: "bookworm-security", Package: "linux-image-6.1.0-56-cloud-amd64", Version: "6.1.192-2"},
	// 6.12 LTS from trixie-security. Not 6.12.95 from bookworm-backports:
	// that build panics at random under TCG.
	{Name: "6.12", Suite: "trixie-security", Package: "linux-image-6.12.118+deb13-cloud-amd64", Version: "6.12.118-1"},
	// From 7.x the image is in linux-binary-*, linux-image-* is a meta package.
	{Name: "7.3", Suite: "trixie-backports", Package: "linux-binary-7.3.4+deb13-cloud-amd64", Version: "7.3.4-1~bpo13+1"},
	// arm64, under qemu-system-aarch64's virt machine. Neither kernel has
	// kprobe.multi (no CONFIG_FPROBE).
	{Name: "6.1-arm64", Arch: "arm64", Suite: "bookworm-security", Package: "linux-image-6.1.0-56-cloud-arm64", Version: "6.1.192-2"},
	{Name: "6.12-arm64", Arch: "arm64", Suite: "trixie-security", Package: "linux-image-6.12.118+deb13-cloud-arm64", Version: "6.12.118-1"},
}

// lts510Tests are what 5.10 must do: exec and exit tracking, syscall hooks
// on the raw syscall tracepoints with every selector and argument reader
// (TestCompatObject), the refusals that name what it lacks, and the
// receiver's events. The other tests need features it does not have.
const lts510Tests = "^(TestProcessSensor.*|TestProbeFindsWhatTheSensorUses|TestSyscallHookMechanismIsWhatProbeReports|TestSyscallHookOnAListOfSyscalls|TestCompatObject|TestSubStringNeedsBPFLoop|TestCookieHooksNeedAttachCookies|TestSyscallHookMatchPIDs|TestSyscallHookMatchArgsByPosition|TestPrefilter|TestDenyExecKillsAtExec|TestRawTracepointHook|TestExecAndExitEventsDescribeTheProcess)$"

// sysrootPackages are the Debian packages a guest of another architecture
// than this machine's takes its programs from (hostBinaries, busybox) and
// the shared objects they need. busybox-static is the version this
// machine has, whose applet list the guest's links follow.
var sysrootPackages = []sysrootPackage{
	{Arch: "arm64", Suite: "bookworm", Package: "busybox-static", Version: "1:1.35.0-4+deb12u1+b1"},
	{Arch: "arm64", Suite: "bookworm", Package: "bash", Version: "5.2.15-2+b13"},
	{Arch: "arm64", Suite: "bookworm", Package: "dash", Version: "0.5.12-2"},
	{Arch: "arm64", Suite: "bookworm", Package: "coreutils", Version: "9.1-1"},
	{Arch: "arm64", Suite: "bookworm", Package: "libc6", Version: "2.36-9+deb12u14"},
	{Arch: "arm64", Suite: "bookworm", Package: "libtinfo6", Version: "6.4-4"},
}

// testPackages are built with `go test -c` and run, in this order, in every
// kernel, as root with CI=true so that a missing kernel feature fails instead
// of skipping. Each runs in its package directory of a copy of the repository
// in the guest, as under `go test`, beside a copy of its testdata/.
var testPackages = []string{
	"./internal/kernel/",
	"./receiver/ebpfreceiver/",
}

// testData are files or directories, relative to the repository root, that
// tests read besides their testdata/. They are copied to the same place
// relative to the guest's copy of the repository, so that a test's relative
// path finds them there too; one missing here is left out with a warning.
var testData = []string{
	"../shared/policies/tetragon-examples", // internal/kernel: TestTetragonExamplesLoadOnThisKernel
	"receiver/ebpfreceiver/metadata.yaml",  // mdatagen's TestComponentLifecycle reads its tests config
}

// hostBinaries are the programs copied from this machine into the guest,
// with the shared objects they need, because tests run them by path and
// busybox-static lacks them: Debian's /bin/sh (dash), /bin/bash (for
// /dev/tcp), /usr/bin/printenv. busybox provides every other command.
var hostBinaries = []string{"dash", "bash", "printenv"}

// notInVM are the tests that cannot work in the guest for a reason of the
// guest's, not the kernel's. They are left out with -test.skip and shown as
// SKIP with the reason.
var notInVM = []excludedTest{
	{Pkg: "./receiver/ebpfreceiver/", Test: "TestKubernetesPolicyObjectsAndPodSelectors", Reason: "runs kube-apiserver and etcd, which the guest does not have; runs on the host in make test"},
	// It forces the compat object on kernels that load the other one:
	// make test does that on the host, and the kernels that load it for
	// their own want of bpf_loop (5.10) run it (lts510Tests).
	{Pkg: "./internal/kernel/", Test: "TestCompatObject", Reason: "the compat object's tests: make test runs them on the host, 5.10 on its own kernel", ExceptOwnRun: true},
}
