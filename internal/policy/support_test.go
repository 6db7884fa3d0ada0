package policy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

func TestSupportedAcceptsTheInitialSet(t *testing.T) {
	// One policy using everything the engine supports, valid and accepted.
	src := header + `spec:
  options: [{name: policy-mode, value: monitor}]
  lists:
  - {name: dups, type: syscalls, values: [sys_dup, sys_dup2]}
  kprobes:
  - call: "list:dups"
    args: [{index: 0, type: int, label: oldfd}]
  - call: sys_write
    syscall: true
    return: true
    message: "write to a terminal"
    tags: [observability.io]
    ignore: {callNotFound: true}
    args:
    - {index: 0, type: fd}
    - {index: 1, type: char_buf, sizeArgIndex: 3, maxData: true}
    - {index: 2, type: size_t}
    returnArg: {index: 0, type: long}
    returnArgAction: Post
    selectors:
    - matchArgs:
      - {index: 0, operator: Prefix, values: [/dev/pts]}
      - {index: 2, operator: InRange, values: ["1:4096"]}
      matchReturnArgs:
      - {index: 0, operator: GT, values: ["0"]}
      matchPIDs:
      - {operator: NotIn, followForks: true, isNamespacePID: true, values: [1]}
      matchBinaries:
      - {operator: In, followChildren: true, values: [/usr/sbin/sshd]}
      matchNamespaces:
      - {namespace: Mnt, operator: NotIn, values: [host_ns]}
      matchCapabilities:
      - {type: Effective, operator: In, isNamespaceCapability: true, values: [CAP_SYS_ADMIN]}
      matchActions:
      - {action: Post, rateLimit: 10s, rateLimitScope: global, kernelStackTrace: true, userStackTrace: true}
      matchReturnActions:
      - {action: Signal, argSig: 19}
    - matchActions: [{action: Override, argError: -1}, {action: NoPost}]
  - call: tcp_connect
    args: [{index: 0, type: sock}]
    selectors:
    - matchArgs:
      - {index: 0, operator: NotDAddr, values: [127.0.0.0/8]}
      - {index: 0, operator: DPort, values: ["443"]}
      - {index: 0, operator: Protocol, values: [IPPROTO_TCP]}
      matchActions: [{action: Sigkill}]
  - call: sk_alloc
    return: true
    args: [{index: 1, type: int}]
    returnArg: {index: 0, type: sock}
    returnArgAction: TrackSock
  - call: __sk_free
    args: [{index: 0, type: sock}]
    selectors: [{matchActions: [{action: UntrackSock, argSock: 0}]}]
  - call: commit_creds
    args: [{index: 0, type: cred}]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args: [{index: 4, type: syscall64}]
    selectors:
    - matchArgs: [{index: 0, operator: InMap, values: ["list:dups"]}]
  - subsystem: sched
    event: sched_process_exec
    raw: true
    args: [{index: 2, type: linux_binprm}]
  uprobes:
  - path: /bin/bash
    symbols: [readline]
    offsets: [0x10]
    return: true
    returnArg: {index: 0, type: string}
  lsmhooks:
  - hook: file_open
    args: [{index: 0, type: file}]
    selectors:
    - matchBinaries: [{operator: NotPostfix, values: [/cat]}]
      matchArgs: [{index: 0, operator: Equal, values: [/etc/shadow]}]
      matchActions: [{action: Override, argError: -13}]
`
	p := mustParse(t, src)
	if err := policy.Validate(p); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	if err := policy.Supported(p); err != nil {
		t.Errorf("Supported:\n%v", err)
	}
}

func TestSupportedRefusesTheRestWithPaths(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			// Every policy-wide feature of Tetragon's spec is taken now.
			name: "policy-wide features",
			yaml: strings.Replace(header, "kind: TracingPolicy", "kind: TracingPolicyNamespaced", 1) + `spec:
  loader: true
  usdts: [{path: /bin/x, provider: p, name: n}]
  enforcers: [{calls: [sys_dup]}]
  podSelector: {matchLabels: {app: x}}
  containerSelector: {matchLabels: {name: x}}
  options: [{name: disable-kprobe-multi, value: "1"}]
  lists:
  - {name: all, type: generated_ftrace, pattern: "^ksys_"}
  - {name: fns, values: [fd_install]}
  kprobes: [{call: "list:all"}]
`,
			want: nil,
		},
		{
			name: "hook fields and argument types",
			yaml: header + `spec:
  kprobes:
  - call: kfree_skb_reason
    data: [{index: 0, type: int, source: current_task, resolve: pid}]
    args:
    - {index: 0, type: user_namespace}
    - {index: 1, type: int, resolve: reason}
    - {index: 2, type: auto}
    - {index: 3}
  uprobes:
  - path: /bin/x
    addrs: [1]
    btfPath: /sys/kernel/btf/vmlinux
    refCtrOffsets: [2]
    offsets: [3]
`,
			want: []string{
				"spec.uprobes[0].btfPath: not supported by Vigil yet",
			},
		},
		{
			name: "selectors, operators and actions",
			yaml: header + `spec:
  kprobes:
  - call: security_file_open
    args:
    - {index: 0, type: file}
    - {index: 1, type: cap_effective}
    - {index: 2, type: kernel_cap_t}
    - {index: 3, type: string}
    selectors:
    - matchArgs:
      - {index: 0, operator: FileType, values: [reg]}
      - {operator: CapabilitiesGained, args: [1, 2]}
      matchParentBinaries: [{operator: In, values: [/bin/sh]}]
      matchNamespaceChanges: [{operator: In, values: [Mnt]}]
      matchCapabilityChanges: [{operator: In, values: [CAP_SETUID]}]
      matchActions:
      - {action: GetUrl, argUrl: "http://example.com"}
      - {action: Post, imaHash: true}
      - {action: Override, argError: -1, argRegs: ["rax=1"]}
    - matchActions:
      - {action: FollowFD, argFd: 0, argName: 0}
      - {action: Sigkill}
`,
			want: []string{
				"spec.kprobes[0].selectors[0].matchActions[2].argRegs: not supported by Vigil yet",
				`spec.kprobes[0].selectors[1].matchActions[0].action: "FollowFD" is not supported by Vigil yet`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.yaml)
			if err := policy.Validate(p); err != nil {
				t.Fatalf("the policy must be valid Tetragon; Validate:\n%v", err)
			}
			err := policy.Supported(p)
			got := problems(t, err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Supported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err != nil && (!errors.Is(err, policy.ErrNotSupported) || errors.Is(err, policy.ErrInvalid)) {
				t.Errorf("Supported's error does not wrap ErrNotSupported alone")
			}
		})
	}
}

func TestSupportedDoesNotFailOnInvalidPolicies(t *testing.T) {
	p := &policy.TracingPolicy{Kind: "Bogus", Spec: policy.Spec{
		KProbes: []policy.KProbeSpec{{
			Args:      []policy.ArgSpec{{Type: "weird"}},
			Selectors: []policy.SelectorSpec{{MatchArgs: []policy.ArgSelector{{Operator: "?"}}, MatchActions: []policy.ActionSelector{{Action: "?"}}}},
		}},
	}}
	if err := policy.Supported(p); err != nil {
		t.Errorf("Supported reported %v; unknown names are Validate's to report", err)
	}
	if err := policy.Supported(nil); err != nil {
		t.Errorf("Supported(nil) = %v", err)
	}
}

// The kprobe options are taken: disable-kprobe-multi reaches the compiled
// hooks, and override-method is refused only where it would change what
// Override does (override-return; Vigil's Override is fmod_ret).
func TestKprobeOptions(t *testing.T) {
	src := func(opts string, action string) string {
		return kprobe(openat+"    selectors:\n    - matchActions: [{action: "+action+", argError: -1}]\n") +
			"  options: [" + opts + "]\n"
	}
	p := mustParse(t, src(`{name: disable-kprobe-multi, value: "true"}, {name: disable-uprobe-multi, value: "1"}, {name: override-method, value: fmod-ret}`, "Override"))
	prog, err := policy.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !prog.Hooks[0].NoKprobeMulti {
		t.Error("disable-kprobe-multi did not reach the hook")
	}
	if _, err := policy.Load(mustParse(t, src(`{name: override-method, value: override-return}`, "Post"))); err != nil {
		t.Errorf("override-return without an Override: %v", err)
	}
	_, err = policy.Load(mustParse(t, src(`{name: override-method, value: override-return}`, "Override")))
	got := problems(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "spec.options[0].value: override-return (bpf_override_return on a kprobe) is not supported by Vigil yet") {
		t.Errorf("override-return with an Override: %q", got)
	}
}
