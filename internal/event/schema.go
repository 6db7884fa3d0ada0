// Package event is Vigil's event schema: the typed events the sensors
// produce, their mapping to OTLP log records and the attribute names in use.
// Every name an event can carry is declared here and nowhere else.
package event

import "github.com/vigilsec/vigil/internal/policy"

// Event names (LogRecord.EventName).
const (
	NameProcessExec       = "process.exec"
	NameProcessExit       = "process.exit"
	NameProcessKprobe     = "process.kprobe"
	NameProcessTracepoint = "process.tracepoint"
	NameProcessUprobe     = "process.uprobe"
	NameProcessUsdt       = "process.usdt"
	NameProcessLSM        = "process.lsm"
	// NameProcessLoader is a file's code mapped executable (a policy's
	// spec.loader, Tetragon's process_loader).
	NameProcessLoader     = "process.loader"
	NameEnforcementAction = "enforcement.action"
)

// hookEventNames names the events of each kind of hook, as Tetragon's
// event types do: a syscall hook is a kprobe on its function there, and a
// raw tracepoint a tracepoint.
var hookEventNames = [...]string{
	policy.HookSyscall:       NameProcessKprobe,
	policy.HookKprobe:        NameProcessKprobe,
	policy.HookConnect:       NameProcessKprobe,
	policy.HookTracepoint:    NameProcessTracepoint,
	policy.HookRawTracepoint: NameProcessTracepoint,
	policy.HookUprobe:        NameProcessUprobe,
	policy.HookUsdt:          NameProcessUsdt,
	policy.HookLSM:           NameProcessLSM,
}

// HookEventName returns the name of the events of a hook of kind k.
func HookEventName(k policy.HookKind) string {
	if int(k) < len(hookEventNames) && hookEventNames[k] != "" {
		return hookEventNames[k]
	}
	return NameProcessKprobe
}

// Resource attributes (semantic conventions).
const (
	AttrHostName     = "host.name"
	AttrHostID       = "host.id"
	AttrOSType       = "os.type"
	AttrK8sNodeName  = "k8s.node.name"
	AttrContainerID  = "container.id"
	AttrK8sNamespace = "k8s.namespace.name"
	AttrK8sPodName   = "k8s.pod.name"
	AttrK8sPodUID    = "k8s.pod.uid"
	AttrK8sContainer = "k8s.container.name"
	// AttrContainerImageName and AttrContainerImageTags describe the
	// image of the container's pod spec; tags is a string slice.
	AttrContainerImageName = "container.image.name"
	AttrContainerImageTags = "container.image.tags"
)

// Log record attributes: semantic-convention names first.
const (
	AttrProcessPID            = "process.pid"
	AttrProcessParentPID      = "process.parent_pid"
	AttrProcessExecutablePath = "process.executable.path"
	AttrProcessExecutableName = "process.executable.name"
	AttrProcessCommandLine    = "process.command_line"
	AttrProcessCommandArgs    = "process.command_args"
	AttrProcessWorkingDir     = "process.working_directory"
	AttrProcessUserID         = "process.user.id"
	AttrProcessRealUserID     = "process.real_user.id"
	AttrProcessGroupID        = "process.group.id"
	AttrProcessRealGroupID    = "process.real_group.id"
	AttrProcessCreationTime   = "process.creation.time"
	AttrProcessExitCode       = "process.exit.code"
	AttrProcessExitTime       = "process.exit.time"
	AttrSecurityRuleName      = "security_rule.name"
	// The rest of the rule, from the policy's annotations
	// (policy.RuleOf); the severity is the record's.
	AttrSecurityRuleCategory    = "security_rule.category"
	AttrSecurityRuleDescription = "security_rule.description"
	AttrSecurityRuleReference   = "security_rule.reference"
	AttrSecurityRuleRulesetName = "security_rule.ruleset.name"
	AttrFilePath                = "file.path"
	// AttrLoaderBuildID is the GNU build id of a loader event's file, in
	// hex, read from its ELF notes.
	AttrLoaderBuildID      = "vigil.loader.build_id"
	AttrNetworkTransport   = "network.transport"
	AttrSourceAddress      = "source.address"
	AttrSourcePort         = "source.port"
	AttrDestinationAddress = "destination.address"
	AttrDestinationPort    = "destination.port"
)

// Vigil's own attributes.
const (
	AttrExecID               = "vigil.exec_id"
	AttrParentExecID         = "vigil.parent.exec_id"
	AttrParentExecutablePath = "vigil.parent.executable.path"
	AttrHook                 = "vigil.hook"
	AttrAction               = "vigil.action"
	AttrArgs                 = "vigil.args"
	// AttrData holds a hook's data entries (a policy's data list), as
	// AttrArgs its arguments, each with its source.
	AttrData = "vigil.data"
	// AttrImaHash is the IMA hash of an LSM hook's file (Post imaHash),
	// "sha256:" and the hex digest, as Tetragon's ima_hash.
	AttrImaHash    = "vigil.ima_hash"
	AttrAncestors  = "vigil.ancestors"
	AttrExitSignal = "vigil.exit.signal"
	AttrCgroupID   = "vigil.cgroup.id"
	AttrCgroupName = "vigil.cgroup.name"
	AttrTID        = "vigil.tid"
	// The exec context, on process.exec records (process.ExecContext).
	// The capability sets are bit masks: bit n is capability n of
	// capability(7) (CAP_SYS_ADMIN is bit 21).
	AttrCapEffective   = "vigil.process.cap.effective"
	AttrCapPermitted   = "vigil.process.cap.permitted"
	AttrCapInheritable = "vigil.process.cap.inheritable"
	// AttrAUID is the login uid, absent when no login set one.
	AttrAUID = "vigil.process.auid"
	// AttrNamespaces maps mnt, pid, net, uts, ipc, cgroup, user and time
	// to the inode numbers /proc/PID/ns shows.
	AttrNamespaces = "vigil.process.namespaces"
	// AttrPrivilegesRaised lists how the exec raised privileges: setuid,
	// setgid, file_capabilities (secure exec without either bit).
	AttrPrivilegesRaised = "vigil.process.privileges_raised"
	// AttrExecFile says where the program run is when that is unusual:
	// memfd, deleted or tmpfs.
	AttrExecFile = "vigil.process.exec_file"
	// AttrInInitTree is true for a process that descends from its
	// container's init, absent otherwise (host processes, kubectl exec).
	AttrInInitTree = "vigil.process.in_init_tree"
	// AttrEnv is the environment, "NAME=value", values masked unless the
	// receiver's process.environment.values names them; absent unless
	// process.environment.enabled.
	AttrEnv = "vigil.process.env"
	// AttrMessage and AttrTags are the policy hook's message and tags.
	AttrMessage = "vigil.message"
	AttrTags    = "vigil.tags"
	// AttrReturn is the return value of a hook reported at return.
	AttrReturn = "vigil.return"
	// AttrKernelStackTrace and AttrUserStackTrace are the stacks a Post
	// action asked for (kernelStackTrace, userStackTrace): string slices,
	// innermost frame first, at most policy.MaxStackFrames each. A kernel
	// frame is "symbol+0xoff", with " [module]" after a module's symbol; a
	// user frame is "symbol+0xoff (file+0xoff)", the second offset being
	// the one in the mapped file, or "(file+0xoff)" where the file has no
	// symbol for it. With the receiver's expose_stack_addresses, each
	// frame starts with its address, "0xffffffff81e0a1b2: ". A user frame
	// in no file is its address alone; so is a kernel frame without a
	// symbol, or "?" when addresses are not exposed.
	AttrKernelStackTrace = "vigil.kernel_stack_trace"
	AttrUserStackTrace   = "vigil.user_stack_trace"
	// AttrProcFS marks a process known only from the /proc scan at start:
	// its exec happened before Vigil was watching.
	AttrProcFS = "vigil.procfs"
	// AttrArgsTruncated marks arguments cut at the kernel-side limit.
	AttrArgsTruncated = "vigil.args_truncated"
	// AttrProcessStartBootNs is when the task was created, CLOCK_BOOTTIME
	// ns, as an int: with process.pid it names one process exactly, so an
	// enforcement action can check a pid was not reused (/proc/<pid>/stat
	// field 22 is the same time in clock ticks).
	AttrProcessStartBootNs = "vigil.process.start_boot_ns"
)

// Values of vigil.process.privileges_raised and vigil.process.exec_file.
const (
	PrivilegeSetUID           = "setuid"
	PrivilegeSetGID           = "setgid"
	PrivilegeFileCapabilities = "file_capabilities"

	ExecFileMemfd   = "memfd"
	ExecFileDeleted = "deleted"
	ExecFileTmpfs   = "tmpfs"
)

// Attributes of enforcement.action records (enforcement.go). The rule or
// policy is security_rule.name; vigil.exec_id is the triggering event's.
const (
	// AttrEnforcementSource is who acted: "processor" (an enforcement rule
	// on the event stream) or "kernel" (a TracingPolicy selector, the exec
	// deny list).
	AttrEnforcementSource = "vigil.enforcement.source"
	// AttrEnforcementRuleID is the id the rule's deny-list entries carry
	// (`vigil enforcement list` shows it).
	AttrEnforcementRuleID = "vigil.enforcement.rule_id"
	AttrEnforcementAction = "vigil.enforcement.action"
	AttrEnforcementSignal = "vigil.enforcement.signal"
	AttrEnforcementMode   = "vigil.enforcement.mode"
	AttrEnforcementResult = "vigil.enforcement.result"
	AttrEnforcementReason = "vigil.enforcement.reason"
	AttrEnforcementError  = "vigil.enforcement.error"
	// AttrEnforcementExpires is when a deny-list entry stops applying.
	AttrEnforcementExpires = "vigil.enforcement.expires"

	AttrTargetPID         = "vigil.enforcement.target.pid"
	AttrTargetExecID      = "vigil.enforcement.target.exec_id"
	AttrTargetBinary      = "vigil.enforcement.target.binary"
	AttrTargetContainerID = "vigil.enforcement.target.container.id"
	AttrTargetCgroupID    = "vigil.enforcement.target.cgroup.id"
	// AttrTargetDestination is a deny_connect target: "CIDR" or "CIDR port N".
	AttrTargetDestination = "vigil.enforcement.target.destination"
	// The pod a Kubernetes action (k8s_label, k8s_delete_pod) aims at.
	AttrTargetK8sNamespace = "vigil.enforcement.target.k8s.namespace.name"
	AttrTargetK8sPodName   = "vigil.enforcement.target.k8s.pod.name"
	AttrTargetK8sPodUID    = "vigil.enforcement.target.k8s.pod.uid"
	// AttrEnforcementLabel is k8s_label's "key=value".
	AttrEnforcementLabel = "vigil.enforcement.label"
	// AttrEnforcementGracePeriod is k8s_delete_pod's grace period in
	// seconds; absent, the pod's own.
	AttrEnforcementGracePeriod = "vigil.enforcement.grace_period_seconds"
)
