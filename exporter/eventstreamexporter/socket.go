package eventstreamexporter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"

	"github.com/vigilsec/vigil/internal/privfile"
)

// socketMode keeps the stream to the collector's user: events carry
// command lines, paths and addresses of every process on the node.
const socketMode = 0o600

// unixSocket is the listening socket at a path, with what is needed to
// remove exactly that socket file when the exporter stops.
type unixSocket struct {
	*net.UnixListener
	path string
	info fs.FileInfo // of the socket file, to recognise it at close
}

// listenUnix creates a listening unix socket at path with mode 0600,
// creating its directory (0700) when missing. The directory must be safe
// for private files (privfile.Dir): another user able to rename it could
// put their own socket where `vigil events` connects.
//
// bind(2) creates the socket file with the process umask, and a chmod after
// it would leave a moment in which another user could connect. So the
// socket is bound under a temporary name, made private, and only then
// renamed to path: it appears at path already private.
//
// A stale socket at path (one nobody listens on, left by a collector that
// was killed) is replaced. A live one, or a file that is not a socket, is
// an error: the path belongs to someone else.
//
// The caller must Close the returned socket, which removes the file.
func listenUnix(path string) (*unixSocket, error) {
	if err := privfile.Dir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("the socket's directory: %w", err)
	}
	if err := checkReplaceable(path); err != nil {
		return nil, err
	}
	tmp := path + "." + strconv.Itoa(os.Getpid())
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove the leftover %s: %w", tmp, err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// The listener knows the file by its temporary name; the file is
	// removed by Close below, by its final name.
	l.SetUnlinkOnClose(false)
	fail := func(err error) (*unixSocket, error) {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, socketMode); err != nil {
		return fail(fmt.Errorf("chmod: %w", err))
	}
	info, err := os.Lstat(tmp)
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("move the socket into place: %w", err))
	}
	return &unixSocket{UnixListener: l, path: path, info: info}, nil
}

// checkReplaceable returns nil when nothing is at path, or a socket of the
// collector's user that no process listens on.
func checkReplaceable(path string) error {
	fi, err := privfile.Check(path)
	if err != nil || fi == nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; remove it or choose another path", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use: another process listens on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be checked: %w", path, err)
	}
	return nil
}

// Close stops listening and removes the socket file if it is still the
// one this listener created (a newer collector may have replaced it).
func (s *unixSocket) Close() error {
	err := s.UnixListener.Close()
	if fi, statErr := os.Lstat(s.path); statErr == nil && os.SameFile(fi, s.info) {
		if rmErr := os.Remove(s.path); rmErr != nil && err == nil {
			err = rmErr
		}
	}
	return err
}

// peerCredentials is the transport credential of the unix socket. It does
// no handshake: the kernel already tells who is connecting. It reads the
// peer's uid and pid (SO_PEERCRED) so that Subscribe can refuse other users
// even if the socket's mode was widened after the collector created it.
type peerCredentials struct{}

// peerInfo is the AuthInfo of a unix socket connection.
type peerInfo struct {
	credentials.CommonAuthInfo
	uid uint32
	pid int32
}

func (peerInfo) AuthType() string { return "peercred" }

func (peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, nil, fmt.Errorf("peer credentials: %T is not a unix socket connection", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return nil, nil, fmt.Errorf("peer credentials: SO_PEERCRED: %w", credErr)
	}
	return conn, peerInfo{
		// Local IPC cannot be observed or altered by other users.
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
		uid:            cred.Uid,
		pid:            cred.Pid,
	}, nil
}

func (peerCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("peer credentials are for the server side only")
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (p peerCredentials) Clone() credentials.TransportCredentials { return p }

func (peerCredentials) OverrideServerName(string) error { return nil }
