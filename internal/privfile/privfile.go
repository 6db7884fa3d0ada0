// Package privfile creates and opens the files a collector running as root
// writes (event logs, the policy status file, sockets, pinned maps), so
// that no other user can have planted, linked or opened them first.
//
// The rules, the same for every caller:
//   - a file is never reached through a symbolic link at its own path;
//   - an existing file must be owned by the process's effective user
//     (root, for the collector) and not writable by group or others; a
//     regular file must have one link, so that it is not another file
//     (/etc/passwd, say) under a second name;
//   - the directories leading to it must be owned by root or by that
//     user, and not writable by group or others unless sticky (/tmp): a
//     user who can rename a directory on the way can redirect the write;
//   - what this package creates is private: files 0600, directories 0700.
//
// Refusals wrap ErrUnsafe and name the path and its owner.
package privfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnsafe is wrapped by every refusal of a path another user could
// control.
var ErrUnsafe = errors.New("unsafe path")

const (
	// FileMode is the mode of the files this package creates.
	FileMode = 0o600
	// DirMode is the mode of the directories this package creates.
	DirMode = 0o700
)

// OwnDirs are the directories Vigil's defaults write into, wherever it
// runs. They hold nothing but Vigil's own files, so Dir also narrows an
// existing one to DirMode: in a DaemonSet the kubelet creates the host
// path before the collector starts, with mode 0755.
var OwnDirs = []string{"/var/run/vigil", "/run/vigil", "/var/log/vigil", "/var/lib/vigil", "/sys/fs/bpf/vigil"}

func unsafe(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", path, fmt.Sprintf(format, args...), ErrUnsafe)
}

// ownerName names a uid for errors: "nobody (uid 65534)".
func ownerName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return fmt.Sprintf("%s (uid %s)", u.Username, id)
	}
	return "uid " + id
}

func owner(fi fs.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Uid }

// checkOwned refuses fi unless the process's effective user owns it and
// neither group nor others may write it (sticky directories excepted when
// shared is set).
func checkOwned(path string, fi fs.FileInfo, trusted func(uint32) bool, shared bool) error {
	if uid := owner(fi); !trusted(uid) {
		return unsafe(path, "owned by %s, not by %s", ownerName(uid), ownerName(uint32(os.Geteuid())))
	}
	if fi.Mode().Perm()&0o022 != 0 && !(shared && fi.Mode()&fs.ModeSticky != 0) {
		return unsafe(path, "writable by group or others (mode %04o)", fi.Mode().Perm())
	}
	return nil
}

func isSelf(uid uint32) bool { return uid == uint32(os.Geteuid()) }

func isSelfOrRoot(uid uint32) bool { return uid == 0 || isSelf(uid) }

// checkAncestors checks every directory from the root down to dir, after
// resolving symbolic links: each must be owned by root or the process's
// user and not writable by others, unless sticky.
func checkAncestors(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	for d := real; ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		if err != nil {
			return err
		}
		if err := checkOwned(d, fi, isSelfOrRoot, true); err != nil {
			return err
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// Dir makes dir ready to hold private files: it is created with its
// missing parents (DirMode) when absent, and then it and every directory
// above it must pass the rules of the package. One of OwnDirs found wider
// than DirMode is narrowed to it.
func Dir(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, DirMode); err != nil {
			return err
		}
		if fi, err = os.Lstat(dir); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return unsafe(dir, "a symbolic link (to be used, a directory must be at the path itself)")
	}
	if !fi.IsDir() {
		return unsafe(dir, "not a directory")
	}
	if slices.Contains(OwnDirs, filepath.Clean(dir)) && isSelf(owner(fi)) && fi.Mode().Perm() != DirMode {
		if err := os.Chmod(dir, DirMode); err != nil {
			return fmt.Errorf("%s: narrowing to %04o: %w", dir, DirMode, err)
		}
	}
	return checkAncestors(dir)
}

// Check returns what is at path, or nil when nothing is. Something there
// must be no symbolic link, owned by the process's user and not writable
// by group or others, so that it may be reused or replaced.
func Check(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, unsafe(path, "a symbolic link, not followed")
	}
	if err := checkExisting(path, fi); err != nil {
		return nil, err
	}
	return fi, nil
}

// checkExisting refuses a file Vigil would write into or replace: one not
// the process's user's, one group or others can write, or a regular file
// with a second name (another file, /etc/passwd say, linked there).
func checkExisting(path string, fi fs.FileInfo) error {
	if err := checkOwned(path, fi, isSelf, false); err != nil {
		return err
	}
	if n := fi.Sys().(*syscall.Stat_t).Nlink; fi.Mode().IsRegular() && n != 1 {
		return unsafe(path, "has %d hard links: it is also another file", n)
	}
	return nil
}

// OpenAppend opens path for appending, creating it (FileMode) and its
// directory (see Dir) when missing. The file itself is checked after it
// is opened, on the open file, so nothing can be swapped in between:
// a symbolic link at path is not followed, and an existing file that
// Check would refuse is closed unwritten.
func OpenAppend(path string) (*os.File, error) {
	if err := Dir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	// O_NONBLOCK: a FIFO planted at path must not block the open; it is
	// refused below. It changes nothing for a regular file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, FileMode)
	if errors.Is(err, unix.ELOOP) {
		return nil, unsafe(path, "a symbolic link, not followed")
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = unsafe(path, "not a regular file")
	}
	if err == nil {
		err = checkExisting(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// WriteFile replaces path with data atomically: a reader sees the old
// content or the new, never half. The new file is created under a
// temporary name (FileMode) beside path and renamed over it; what was at
// path must pass Check, and the directory Dir.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := Dir(dir); err != nil {
		return err
	}
	if _, err := Check(path); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
