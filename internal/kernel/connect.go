package kernel

import "github.com/vigilsec/vigil/internal/policy"

// connectKind serves kprobes on connect with a sockaddr argument: the
// cgroup connect4/connect6 programs, which can refuse the connection,
// dispatch them through syscall_hooks (connect4Key), so the kind attaches
// nothing of its own.
type connectKind struct{}

func (connectKind) ownProbes() bool                        { return false }
func (connectKind) attachable(*Sensor, *policy.Hook) error { return nil }
func (connectKind) attach(*Sensor, *InstalledHook) error   { return nil }

func (connectKind) mechanisms(Features) []HookMechanism {
	return []HookMechanism{{Hook: "kprobes on connect with sockaddr", Mechanism: "cgroup connect4/connect6 (Override: EPERM)"}}
}
