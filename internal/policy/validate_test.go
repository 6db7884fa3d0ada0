package policy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/policy"
)

// mustParse parses one policy document or fails the test.
func mustParse(t *testing.T, src string) *policy.TracingPolicy {
	t.Helper()
	ps, err := policy.Parse([]byte(src), "t.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(ps) != 1 {
		t.Fatalf("Parse: %d policies, want 1", len(ps))
	}
	return ps[0]
}

// problems returns the lines of a FieldErrors, nil for nil.
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var fe policy.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a FieldErrors", err)
	}
	var lines []string
	for _, e := range fe {
		lines = append(lines, e.Error())
	}
	return lines
}

// kprobe wraps a kprobe spec (indented as an item of spec.kprobes) in a
// policy.
func kprobe(body string) string {
	return header + "spec:\n  kprobes:\n" + body
}

// openat is a kprobe with an int, a string and an int argument.
const openat = `  - call: sys_openat
    syscall: true
    args:
    - {index: 0, type: int}
    - {index: 1, type: string}
    - {index: 2, type: uint32}
`

// sock is a kprobe with a sock, a sockaddr and a capability set.
const sockHook = `  - call: security_socket_connect
    args:
    - {index: 0, type: sock}
    - {index: 1, type: sockaddr}
    - {index: 2, type: cap_effective}
`

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "object identity",
			yaml: `apiVersion: cilium.io/v2
kind: TracingPolicy
metadata:
  name: Bad_Name
  namespace: default
spec:
  kprobes: [{call: fd_install}]
`,
			want: []string{
				`apiVersion: "cilium.io/v2", want cilium.io/v1alpha1`,
				`metadata.name: "Bad_Name" is not a valid object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters`,
				"metadata.namespace: a TracingPolicy applies to the whole cluster and takes no namespace; use kind TracingPolicyNamespaced",
			},
		},
		{
			name: "namespaced policy without namespace is valid",
			yaml: strings.Replace(kprobe("  - call: fd_install\n"), "kind: TracingPolicy", "kind: TracingPolicyNamespaced", 1),
		},
		{
			name: "no hook",
			yaml: header + "spec: {}\n",
			want: []string{"spec: no hook: a policy needs kprobes, tracepoints, uprobes, lsmhooks, usdts or fentries"},
		},
		{
			name: "matchArgs index that names no argument",
			yaml: kprobe(`  - call: fd_install
    args: [{index: 0, type: int}, {index: 1, type: file}]
    selectors:
    - matchArgs: [{index: 3, operator: Equal, values: ["/etc/passwd"]}]
`),
			want: []string{"spec.kprobes[0].selectors[0].matchArgs[0].index: 3 is not a declared arg (declared: 0, 1)"},
		},
		{
			name: "argument types and their fields",
			yaml: kprobe(`  - call: sys_write
    syscall: true
    args:
    - {index: 0, type: integer}
    - {index: 1, type: char_buf, sizeArgIndex: 2}
    - {index: 2, type: size_t, maxData: true}
    - {index: 5, type: int}
    - {index: 3, type: string, returnCopy: true}
    - {index: 4, type: int}
`),
			want: []string{
				"spec.kprobes[0].args: 6 arguments, at most 5 (MaxArgsPerHook)",
				`spec.kprobes[0].args[0].type: "integer" is not an argument type (known: auto, bpf_attr, bpf_cmd, bpf_map, bpf_prog, cap_effective, cap_inheritable, cap_permitted, capability, char_buf, char_iovec, const_buf, cred, data_loc, dentry, fd, file, filename, int, int16, int32, int32_arr, int64, int8, iov_iter, kernel_cap_t, kiocb, linux_binprm, load_info, long, module, net_device, nop, path, perf_event, sint16, sint32, sint64, sint8, size_t, skb, sock, sockaddr, sockaddr_un, socket, string, syscall64, uint16, uint32, uint64, uint8, ulong, user_namespace)`,
				"spec.kprobes[0].args[1].sizeArgIndex: 2 is the argument itself; sizeArgIndex is the index of the size argument plus one",
				"spec.kprobes[0].args[2].maxData: only char_buf, char_iovec and iov_iter arguments read more data",
				"spec.kprobes[0].args[3].index: 5: a kprobe reads arguments 0 to 4",
				"spec.kprobes[0].args[4].returnCopy: only char_buf and char_iovec arguments can be copied at return",
			},
		},
		{
			name: "kprobe call, syscall and return",
			yaml: kprobe(`  - call: openat
    syscall: true
    return: true
  - call: "list:missing"
  - call: fd_install
    returnArg: {index: 0, type: int}
    returnArgAction: TrackSock
`),
			want: []string{
				`spec.kprobes[0].call: "openat" is not a syscall name: with syscall: true, call names a syscall as sys_NAME`,
				"spec.kprobes[0].returnArg: required with return: true: the type of the return value",
				`spec.kprobes[1].call: list "missing" is not declared in spec.lists`,
				"spec.kprobes[2].returnArgAction: needs return: true",
			},
		},
		{
			name: "operators must apply to the argument's type",
			yaml: kprobe(openat + `    selectors:
    - matchArgs:
      - {index: 0, operator: Prefix, values: ["/etc"]}
      - {index: 1, operator: GT, values: ["3"]}
      - {index: 1, operator: DPort, values: ["80"]}
      - {index: 0, operator: In, values: ["1"]}
      - {index: 0, operator: Bigger, values: ["1"]}
`),
			want: []string{
				"spec.kprobes[0].selectors[0].matchArgs[0].operator: Prefix does not apply to an argument of type int; it matches strings, paths and buffers",
				"spec.kprobes[0].selectors[0].matchArgs[1].operator: GT does not apply to an argument of type string; it compares integers",
				"spec.kprobes[0].selectors[0].matchArgs[2].operator: DPort does not apply to an argument of type string; it matches sock, skb and socket arguments",
				"spec.kprobes[0].selectors[0].matchArgs[3].operator: In is an operator of matchPIDs and matchBinaries; arguments use Equal or NotEqual",
				`spec.kprobes[0].selectors[0].matchArgs[4].operator: "Bigger" is not an operator of argument filters`,
			},
		},
		{
			name: "integer values parse for the type, with Tetragon's prefixes",
			yaml: kprobe(openat + `    selectors:
    - matchArgs:
      - {index: 0, operator: Equal, values: ["-1", "0x10", "0o17", "2147483648"]}
      - {index: 2, operator: Mask, values: ["0x40", "-1", "forty"]}
      - {index: 0, operator: InRange, values: ["1:10", "10:1", "5"]}
      - {index: 2, operator: InMap, values: ["1:70000", "7", "list:nope"]}
      - {index: 0, operator: Equal, values: ["1", "2", "3", "4", "5"]}
`),
			want: []string{
				`spec.kprobes[0].selectors[0].matchArgs[0].values[3]: "2147483648" is not a int value (an integer from -2147483648 to 2147483647)`,
				`spec.kprobes[0].selectors[0].matchArgs[1].values[1]: "-1" is not a uint32 value (an integer from 0 to 4294967295)`,
				`spec.kprobes[0].selectors[0].matchArgs[1].values[2]: "forty" is not a uint32 value (an integer from 0 to 4294967295)`,
				`spec.kprobes[0].selectors[0].matchArgs[2].values[1]: "10:1" is empty: min is above max`,
				`spec.kprobes[0].selectors[0].matchArgs[2].values[2]: "5" is not a range: want min:max`,
				`spec.kprobes[0].selectors[0].matchArgs[3].values[0]: "1:70000" spans more than 65536 values (MaxRangeWidth)`,
				`spec.kprobes[0].selectors[0].matchArgs[3].values[2]: list "nope" is not declared in spec.lists`,
				"spec.kprobes[0].selectors[0].matchArgs[4].values: 5 values, at most 4 for Equal (MaxIntValues); InMap takes more",
			},
		},
		{
			name: "string values",
			yaml: kprobe(openat + `    selectors:
    - matchArgs:
      - {index: 1, operator: Equal, values: ["", "/etc/passwd\0"]}
      - {index: 1, operator: Postfix, values: ["` + strings.Repeat("a", 128) + `"]}
`),
			want: []string{
				"spec.kprobes[0].selectors[0].matchArgs[0].values[0]: empty: a string filter needs a value",
				"spec.kprobes[0].selectors[0].matchArgs[1].values[0]: 128 bytes, at most 127 for Postfix (MaxPostfixLen)",
			},
		},
		{
			name: "socket operators and values",
			yaml: kprobe(sockHook + `    selectors:
    - matchArgs:
      - {index: 0, operator: DAddr, values: ["10.0.0.0/8", "::1", "10.0.0.0/33", "localhost", "${PODCIDR}"]}
      - {index: 0, operator: DPort, values: ["443", "1024:65535", "65536", "http"]}
      - {index: 0, operator: Protocol, values: [IPPROTO_TCP, "17", IPPROTO_BOGUS]}
      - {index: 1, operator: DAddr, values: ["10.0.0.1"]}
      - {index: 1, operator: Family, values: [AF_INET, AF_INET6, "10"]}
    - matchArgs:
      - {index: 0, operator: State, values: [TCP_ESTABLISHED, TCP_NOPE]}
      - {index: 0, operator: DPortPriv, values: ["80"]}
      - {index: 2, operator: Equal, values: ["CAP_SYS_ADMIN,CAP_BPF", "0x200000", "CAP_NOPE"]}
      - {index: 0, operator: Equal, values: ["1"]}
`),
			want: []string{
				`spec.kprobes[0].selectors[0].matchArgs[0].values[2]: "10.0.0.0/33" is not a CIDR (such as 10.0.0.0/8 or fd00::/8)`,
				`spec.kprobes[0].selectors[0].matchArgs[0].values[3]: "localhost" is not an IP address or CIDR`,
				`spec.kprobes[0].selectors[0].matchArgs[0].values[4]: "${PODCIDR}" is an unsubstituted template variable, not a value: substitute it (e.g. with envsubst) before loading`,
				`spec.kprobes[0].selectors[0].matchArgs[1].values[2]: "65536" is not a port: want a number from 0 to 65535 or a range min:max`,
				`spec.kprobes[0].selectors[0].matchArgs[1].values[3]: "http" is not a port: want a number from 0 to 65535 or a range min:max`,
				`spec.kprobes[0].selectors[0].matchArgs[2].values[2]: "IPPROTO_BOGUS" is not a protocol: want a name such as IPPROTO_TCP, a number from 0 to 65535 or a range min:max`,
				"spec.kprobes[0].selectors[0].matchArgs[3].operator: DAddr does not apply to an argument of type sockaddr; it matches sock, skb and socket arguments",
				"spec.kprobes[0].selectors[1].matchArgs[0].values[1]: \"TCP_NOPE\" is not a TCP state: want a name such as TCP_ESTABLISHED, a number from 0 to 255 or a range min:max",
				"spec.kprobes[0].selectors[1].matchArgs[1].values: DPortPriv takes no values",
				`spec.kprobes[0].selectors[1].matchArgs[2].values[2]: "CAP_NOPE" is neither a capability mask nor capability names separated by commas`,
				"spec.kprobes[0].selectors[1].matchArgs[3].operator: Equal does not apply to an argument of type sock; it compares integers, strings, paths and capability sets",
			},
		},
		{
			name: "return value filters",
			yaml: kprobe(openat + `    return: true
    returnArg: {index: 0, type: int}
    selectors:
    - matchReturnArgs:
      - {index: 1, operator: GT, values: ["0"]}
      - {index: 0, operator: LT, values: ["x"]}
      - {index: 0, operator: NotEqual, values: ["0"]}
  - call: fd_install
    selectors:
    - matchReturnArgs: [{operator: Equal, values: ["0"]}]
      matchReturnActions: [{action: Post}]
`),
			want: []string{
				"spec.kprobes[0].selectors[0].matchReturnArgs: 3 filters, at most 2 (MaxMatchReturnArgsPerSelector)",
				"spec.kprobes[0].selectors[0].matchReturnArgs[0].index: 1 is not the index of returnArg (0)",
				`spec.kprobes[0].selectors[0].matchReturnArgs[1].values[0]: "x" is not a int value (an integer from -2147483648 to 2147483647)`,
				"spec.kprobes[1].selectors[0].matchReturnArgs: the hook reports no return value (needs return: true and returnArg)",
				"spec.kprobes[1].selectors[0].matchReturnActions: the hook reports no return value (needs return: true and returnArg)",
			},
		},
		{
			name: "actions and their parameters",
			yaml: kprobe(sockHook + `    selectors:
    - matchActions:
      - {action: Signal}
      - {action: Override}
      - {action: Sigkill, rateLimit: 1m}
    - matchActions:
      - {action: Post, rateLimit: "0"}
      - {action: post, rateLimit: 2x, rateLimitScope: pod}
      - {action: NoPost, rateLimitScope: thread}
    - matchActions:
      - {action: TrackSock, argSock: 1}
      - {action: GetUrl, argUrl: "ftp://x"}
      - {action: Explode}
    - matchActions:
      - {action: NotifyEnforcer}
      - {action: DnsLookup, argFqdn: "not a name"}
      - {action: FollowFD, argFd: 7, argName: 0}
`),
			want: []string{
				"spec.kprobes[0].selectors[0].matchActions[0].argSig: required: a signal number from 1 to 64",
				"spec.kprobes[0].selectors[0].matchActions[1].argError: required: the value the hooked function returns instead, e.g. -1 (-EPERM)",
				"spec.kprobes[0].selectors[0].matchActions[2].rateLimit: only the Post action is rate limited",
				`spec.kprobes[0].selectors[1].matchActions[0].rateLimit: "0": want a positive number of seconds, or a number with unit s, m or h (10s, 1m, 2h)`,
				`spec.kprobes[0].selectors[1].matchActions[1].rateLimit: "2x": want a positive number of seconds, or a number with unit s, m or h (10s, 1m, 2h)`,
				`spec.kprobes[0].selectors[1].matchActions[1].rateLimitScope: "pod", want thread, process or global`,
				"spec.kprobes[0].selectors[1].matchActions[2].rateLimitScope: needs rateLimit",
				"spec.kprobes[0].selectors[2].matchActions[0].argSock: argument 1 is of type sockaddr, not sock",
				"spec.kprobes[0].selectors[2].matchActions[1].argUrl: required: an http or https URL",
				`spec.kprobes[0].selectors[2].matchActions[2].action: "Explode" is not an action (known: CleanupEnforcerNotification, CopyFD, Count, DnsLookup, FollowFD, GetUrl, NoPost, NotifyEnforcer, Override, Post, Set, Sigkill, Signal, TrackSock, UnfollowFD, UntrackSock)`,
				"spec.kprobes[0].selectors[3].matchActions[0].action: NotifyEnforcer needs an enforcer in spec.enforcers",
				"spec.kprobes[0].selectors[3].matchActions[0]: NotifyEnforcer needs argError, argSig or both",
				"spec.kprobes[0].selectors[3].matchActions[1].argFqdn: required: a DNS name to look up",
				"spec.kprobes[0].selectors[3].matchActions[2].argFd: 7 is not a declared arg",
			},
		},
		{
			name: "process filters",
			yaml: kprobe(`  - call: fd_install
    selectors:
    - matchPIDs:
      - {operator: in, values: [1]}
      - {operator: NotIn, values: [1, 2, 3, 4, 5]}
      matchBinaries:
      - {operator: Prefix, values: [usr/bin], followChildren: true}
      matchNamespaces:
      - {namespace: pid, operator: In, values: [host_ns, "4026531836"]}
      - {namespace: Disk, operator: In, values: [self]}
      matchCapabilities:
      - {type: Sometimes, operator: In, values: [CAP_SYS_ADMIN, cap_bpf, CAP_FLY]}
      - {operator: NotIn, values: [CAP_BPF]}
    - matchBinaries:
      - {operator: In, values: [bash]}
      - {operator: Postfix, values: []}
`),
			want: []string{
				`spec.kprobes[0].selectors[0].matchPIDs[0].operator: "in", want In or NotIn`,
				"spec.kprobes[0].selectors[0].matchPIDs[1].values: 5 PIDs, at most 4 (MaxPIDValues)",
				"spec.kprobes[0].selectors[0].matchBinaries[0].followChildren: only with In or NotIn",
				`spec.kprobes[0].selectors[0].matchBinaries[0].values[0]: "usr/bin" does not start with /; binaries are matched by their full path`,
				`spec.kprobes[0].selectors[0].matchNamespaces[1].namespace: "Disk", want one of Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User`,
				`spec.kprobes[0].selectors[0].matchNamespaces[1].values[0]: "self" is neither a namespace inode number nor host_ns`,
				"spec.kprobes[0].selectors[0].matchCapabilities: 2 filters, at most 1 (MaxMatchCapabilitiesPerSelector): Tetragon's kernel code reads only the first",
				`spec.kprobes[0].selectors[0].matchCapabilities[0].type: "Sometimes", want Effective, Inheritable or Permitted`,
				`spec.kprobes[0].selectors[0].matchCapabilities[0].values[2]: "CAP_FLY" is not a capability (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)`,
				"spec.kprobes[0].selectors[1].matchBinaries: 2 filters, at most 1 (MaxMatchBinariesPerSelector)",
				`spec.kprobes[0].selectors[1].matchBinaries[0].values[0]: "bash" is not an absolute path; binaries are matched by their full path`,
				"spec.kprobes[0].selectors[1].matchBinaries[1].values: required: the binaries to match",
			},
		},
		{
			name: "tracepoints: index is a format field, or else a position in args",
			yaml: header + `spec:
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args: [{index: 4, type: syscall64}]
    selectors:
    - matchArgs:
      - {index: 0, operator: InMap, values: ["list:dups"]}
      - {index: 4, operator: Equal, values: ["59"]}
      - {index: 1, operator: Equal, values: ["59"]}
      matchActions: [{action: Override, argError: -1}]
  - subsystem: "bad name"
    event: sys_exit
    return: true
  lists:
  - {name: dups, type: syscalls, values: [sys_dup, __ia32_sys_dup, dup3]}
`,
			want: nil, // replaced below: return is not a tracepoint field
		},
		{
			name: "lists, options and label selectors",
			yaml: header + `spec:
  kprobes: [{call: "list:fns"}, {call: "list:gen"}]
  lists:
  - {name: fns, values: ["not a symbol"]}
  - {name: fns, type: syscalls, values: [sys_dup]}
  - {name: gen, type: generated_ftrace}
  - {name: x, type: everything}
  options:
  - {name: policy-mode, value: enforcing}
  - {name: disable-kprobe-multi, value: "yes"}
  - {name: fast-mode, value: "1"}
  podSelector:
    matchLabels: {app: "bad value!"}
    matchExpressions:
    - {key: tier, operator: In}
    - {key: env, operator: Exists, values: [prod]}
    - {key: "-bad", operator: Near}
  hostSelector: {matchLabels: {a: b}}
`,
			want: []string{
				`spec.lists[0].values[0]: "not a symbol" is not a kernel function name`,
				`spec.lists[1].name: "fns" names another list already`,
				"spec.lists[2].pattern: required for a generated_ftrace list: a regular expression over kernel function names",
				`spec.lists[3].type: "everything", want syscalls, generated_syscalls or generated_ftrace (or no type for kernel functions)`,
				`spec.options[0].value: "enforcing": want enforce or monitor`,
				`spec.options[1].value: "yes": want true or false`,
				`spec.options[2].name: "fast-mode" is not an option (known: disable-kprobe-multi, disable-uprobe-multi, override-method, policy-mode, uprobe-heap-size)`,
				`spec.podSelector.matchLabels.app: "bad value!" is not a valid label value: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit`,
				"spec.podSelector.matchExpressions[0].values: required with operator In",
				"spec.podSelector.matchExpressions[1].values: operator Exists takes no values",
				`spec.podSelector.matchExpressions[2].key: "-bad" is not a valid key: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, after an optional DNS prefix and /`,
				`spec.podSelector.matchExpressions[2].operator: "Near", want In, NotIn, Exists or DoesNotExist`,
				"spec.hostSelector: only {} (every host) is defined; host labels are not",
			},
		},
		{
			name: "messages, tags, uprobes, LSM hooks and USDTs",
			yaml: header + `spec:
  uprobes:
  - path: bin/bash
    message: "x"
    tags: ["a", "ok"]
  - path: /bin/bash
    symbols: [readline]
    args: [{index: 0, type: string, returnCopy: true}]
  lsmhooks:
  - hook: File-Open
    args: [{index: 0, type: char_buf, returnCopy: true}]
    selectors:
    - matchReturnArgs: [{index: 0, operator: Equal, values: ["0"]}]
  usdts:
  - path: usr/sbin/mysqld
    provider: mysql
    name: query-start
    args: [{index: 8, type: int}]
  - path: /usr/sbin/mysqld
    name: query__start
`,
			want: []string{
				`spec.uprobes[0].path: "bin/bash" is not an absolute path`,
				"spec.uprobes[0]: needs symbols, offsets or addrs to hook",
				"spec.uprobes[0].message: 1 characters, at least 2",
				"spec.uprobes[0].tags[0]: 1 characters, want 2 to 128",
				"spec.uprobes[1].args[0].returnCopy: only char_buf and char_iovec arguments can be copied at return",
				`spec.lsmhooks[0].hook: "File-Open" is not an LSM hook name`,
				"spec.lsmhooks[0].args[0].returnCopy: an LSM hook has no return to copy the argument at",
				"spec.lsmhooks[0].selectors[0].matchReturnArgs: the hook reports no return value (needs return: true and returnArg)",
				`spec.usdts[0].path: "usr/sbin/mysqld" is not an absolute path`,
				`spec.usdts[0].name: "query-start": required, the probe's name as the binary's notes spell it (letters, digits, _)`,
				"spec.usdts[0].args[0].index: 8: Vigil reads USDT arguments 0 to 7",
				`spec.usdts[1].provider: "": required, the probe's provider as the binary's notes spell it (letters, digits, _)`,
			},
		},
		{
			name: "free-form parts are checked strictly too",
			yaml: header + `spec:
  kprobes:
  - call: fd_install
    args: [{index: 0, type: int}]
    selectors:
    - matchNamespaceChanges: [{operator: In, values: [Mnt, Disk], extra: 1}]
      matchCapabilityChanges: [{type: Effective, operator: In, values: [CAP_SETUID]}]
  enforcers:
  - {calls: ["list:none", sys_dup, dup]}
  - {call: [sys_dup]}
`,
			want: []string{
				"spec.kprobes[0].selectors[0].matchNamespaceChanges[0].extra: unknown field",
				"spec.enforcers: 2 enforcers, at most 1",
				`spec.enforcers[0].calls[0]: list "none" is not declared in spec.lists`,
				`spec.enforcers[0].calls[2]: "dup" is not a syscall name (sys_NAME) or list:NAME`,
				"spec.enforcers[1].call: unknown field",
			},
		},
	}
	// The tracepoint case: "return" is not a tracepoint field, so it does
	// not even parse; drop it and check what Validate says of the rest.
	for i := range tests {
		if strings.HasPrefix(tests[i].name, "tracepoints:") {
			tests[i].yaml = strings.Replace(tests[i].yaml, "    return: true\n", "", 1)
			tests[i].want = []string{
				`spec.lists[0].values[2]: "dup3" is not a syscall name (sys_NAME, or with an architecture prefix such as __ia32_sys_NAME)`,
				`spec.tracepoints[0].selectors[0].matchArgs[2].index: 1 is neither a declared field nor a position in args (declared: 4; positions 0 to 0)`,
				"spec.tracepoints[0].selectors[0].matchActions[0].action: a tracepoint has no return value to override",
				`spec.tracepoints[1].subsystem: "bad name" is not a tracepoint subsystem name`,
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.yaml)
			err := policy.Validate(p)
			got := problems(t, err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err != nil && !errors.Is(err, policy.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			if err != nil && errors.Is(err, policy.ErrNotSupported) {
				t.Errorf("errors.Is(err, ErrNotSupported) = true for a validation error")
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if got := problems(t, policy.Validate(nil)); !reflect.DeepEqual(got, []string{"policy: missing"}) {
		t.Errorf("Validate(nil) = %q", got)
	}
}

func TestCanonicalNames(t *testing.T) {
	for in, want := range map[string]string{"gt": "GT", "GreaterThan": "GT", "Equal": "Equal", "eq": "Equal", "NotSportPriv": "NotSPortPriv", "saddr": "SAddr"} {
		if got, ok := policy.CanonicalOperator(in); !ok || got != want {
			t.Errorf("CanonicalOperator(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := policy.CanonicalOperator("In"); ok {
		t.Error(`CanonicalOperator("In") is ok; In is not an argument operator`)
	}
	for in, want := range map[string]string{"sigkill": "Sigkill", "POST": "Post", "followfd": "FollowFD"} {
		if got, ok := policy.CanonicalAction(in); !ok || got != want {
			t.Errorf("CanonicalAction(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for in, want := range map[string]string{"long": "int64", "sint32": "int32", "ulong": "uint64", "": "auto", "size_t": "size_t"} {
		if got, ok := policy.CanonicalArgType(in); !ok || got != want {
			t.Errorf("CanonicalArgType(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if n, ok := policy.CapabilityNumber(" cap_bpf"); !ok || n != 39 {
		t.Errorf("CapabilityNumber(cap_bpf) = %d, %v", n, ok)
	}
}

func TestMatchArgPosition(t *testing.T) {
	args := []policy.ArgSpec{{Index: 4, Type: "syscall64"}, {Index: 7, Type: "int"}}
	for _, tt := range []struct {
		m          policy.ArgSelector
		tracepoint bool
		pos        int
		ok         bool
	}{
		{policy.ArgSelector{Index: 7}, false, 1, true},
		{policy.ArgSelector{Index: 1}, false, 0, false},
		{policy.ArgSelector{Index: 1}, true, 1, true}, // a position
		{policy.ArgSelector{Index: 4}, true, 0, true}, // a field first
		{policy.ArgSelector{Index: 9}, true, 0, false},
		{policy.ArgSelector{Args: []uint32{1, 0}}, false, 1, true},
		{policy.ArgSelector{Args: []uint32{2}}, false, 2, false},
	} {
		pos, ok := policy.MatchArgPosition(args, &tt.m, tt.tracepoint)
		if ok != tt.ok || (ok && pos != tt.pos) {
			t.Errorf("MatchArgPosition(%+v, tracepoint=%v) = %d, %v; want %d, %v", tt.m, tt.tracepoint, pos, ok, tt.pos, tt.ok)
		}
	}
}

// containerSelector's repo takes image repositories in matchExpressions,
// which are no label values; elsewhere values are still checked.
func TestContainerSelectorRepoValues(t *testing.T) {
	src := `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: repo}
spec:
  containerSelector:
    matchExpressions:
    - {key: repo, operator: In, values: [docker.io/library/nginx]}
    - {key: name, operator: In, values: [a/b]}
  kprobes:
  - {call: sys_openat, syscall: true}
`
	got := problems(t, policy.Validate(mustParse(t, src)))
	if len(got) != 1 || !strings.HasPrefix(got[0], "spec.containerSelector.matchExpressions[1].values[0]: ") {
		t.Errorf("Validate: %q, want one problem, the name's value", got)
	}
}
