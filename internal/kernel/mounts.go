package kernel

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ensureMounted mounts a pseudo filesystem (securityfs, tracefs, bpffs) at
// target unless one of that type is there already. A fresh machine or a
// minimal container has none of them; Vigil mounts what it needs rather than
// asking the operator to.
func ensureMounted(fstype string, magic int64, target string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err == nil && st.Type == magic {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", target, err)
	}
	if err := unix.Mount(fstype, target, fstype, 0, ""); err != nil {
		return fmt.Errorf("mounting %s at %s: %w", fstype, target, err)
	}
	return nil
}
