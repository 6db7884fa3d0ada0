package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/privfile"
)

// DefaultPinPath is where the sensor pins the maps that outlive it and that
// other processes (the enforcement processor, `vigil enforcement`) open:
// the deny lists.
const DefaultPinPath = "/sys/fs/bpf/vigil"

// ensurePinPath mounts bpffs where needed and creates dir, root only. The
// sensor reuses the maps pinned there, so a directory another user could
// have written into is refused (privfile.Dir): bpffs' root is
// world-writable.
func ensurePinPath(dir string) error {
	if err := ensureMounted("bpf", unix.BPF_FS_MAGIC, "/sys/fs/bpf"); err != nil {
		return err
	}
	if err := privfile.Dir(dir); err != nil {
		return fmt.Errorf("the pin directory: %w", err)
	}
	return nil
}

// DenyKind is what a deny-list entry refuses.
type DenyKind string

const (
	// DenyExec kills processes that exec the binary, at exec.
	DenyExec DenyKind = "exec"
	// DenyConnect refuses connects to the destination with EPERM, IPv4 or
	// IPv6. An IPv4 destination is also refused to dual-stack sockets,
	// which connect to it by its v4-mapped IPv6 address.
	DenyConnect DenyKind = "connect"
)

// DenyEntry is one entry of the kernel's deny lists.
type DenyEntry struct {
	Kind DenyKind
	// Binary is the path of a DenyExec entry, as exec'd.
	Binary string
	// Prefix, Port (0: every port) and Cgroup (0: every cgroup) describe
	// a DenyConnect entry.
	Prefix netip.Prefix
	Port   uint16
	Cgroup uint64
	// Expires is when the entry stops applying; zero never.
	Expires time.Time
	// Rule is the id the caller gave the entry, for its audit trail.
	Rule uint64
}

func (e DenyEntry) String() string {
	var s string
	if e.Kind == DenyExec {
		s = "exec " + e.Binary
	} else {
		s = fmt.Sprintf("connect %s port %d cgroup %d", e.Prefix, e.Port, e.Cgroup)
		if e.Port == 0 {
			s = fmt.Sprintf("connect %s cgroup %d", e.Prefix, e.Cgroup)
		}
	}
	if !e.Expires.IsZero() {
		s += " until " + e.Expires.UTC().Format(time.RFC3339)
	}
	return s
}

// DenyLists are the kernel's deny lists, opened from where the sensor
// pinned them. Close releases the file descriptors; the lists stay.
type DenyLists struct {
	exec, connect, connect6 *ebpf.Map
	clock                   BootClock
}

// OpenDenyLists opens the deny lists the sensor pinned under pinPath,
// which must be a directory only its user can write (privfile.Check):
// lists another user pinned there would be taken for the sensor's.
func OpenDenyLists(pinPath string) (*DenyLists, error) {
	if _, err := privfile.Check(pinPath); err != nil {
		return nil, fmt.Errorf("the pin directory: %w", err)
	}
	ex, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, "deny_exec"), nil)
	if err != nil {
		return nil, fmt.Errorf("opening the exec deny list (is the ebpf receiver running?): %w", err)
	}
	co, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, "deny_connect"), nil)
	if err != nil {
		ex.Close()
		return nil, fmt.Errorf("opening the connect deny list: %w", err)
	}
	co6, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, "deny_connect6"), nil)
	if err != nil {
		ex.Close()
		co.Close()
		return nil, fmt.Errorf("opening the IPv6 connect deny list (a receiver of this version pins it): %w", err)
	}
	return &DenyLists{exec: ex, connect: co, connect6: co6, clock: NewBootClock()}, nil
}

// Close releases the lists' file descriptors.
func (d *DenyLists) Close() error {
	return errors.Join(d.exec.Close(), d.connect.Close(), d.connect6.Close())
}

func (d *DenyLists) expiry(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano() - d.clock.offset)
}

func (d *DenyLists) wall(boot uint64) time.Time {
	if boot == 0 {
		return time.Time{}
	}
	return d.clock.Time(boot)
}

func execKey(binary string) (sensorProcInfo, error) {
	var k sensorProcInfo
	if binary == "" || len(binary) > len(k.Bin)-1 {
		return k, fmt.Errorf("binary %q: a path of 1 to %d bytes", binary, len(k.Bin)-1)
	}
	k.BinLen = uint32(len(binary))
	putString(k.Bin[:], binary)
	return k, nil
}

// ParseDestination parses a connect deny-list destination: an IPv4 or IPv6
// address or CIDR. A v4-mapped one (::ffff:10.0.0.0/104) comes back as the
// IPv4 prefix it maps.
func ParseDestination(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4 or IPv6 address or CIDR", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return connectPrefix(p)
}

// connectPrefix checks a destination and brings a v4-mapped one to IPv4,
// the list that holds it.
func connectPrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return p, fmt.Errorf("destination %s: not an IP address or CIDR", p)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return p, fmt.Errorf("%s: a v4-mapped prefix must be at least 96 bits long", p)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// connectKey is the deny-list key of a connect entry and the list that holds
// it: deny_connect for IPv4, deny_connect6 for IPv6.
func (d *DenyLists) connectKey(p netip.Prefix, port uint16, cgroup uint64) (*ebpf.Map, any, error) {
	p, err := connectPrefix(p)
	if err != nil {
		return nil, nil, err
	}
	// The data compared: 32 bits of padding, the cgroup, the port, then
	// the address prefix (bpf/probes.h, deny_connect_key).
	const head = 32 + 64 + 32
	if p.Addr().Is4() {
		return d.connect, &sensorDenyConnectKey{Prefixlen: uint32(head + p.Bits()), Cgroup: cgroup, Port: uint32(port),
			Addr: nativeUint32(p.Addr().As4())}, nil
	}
	return d.connect6, &sensorDenyConnect6Key{Prefixlen: uint32(head + p.Bits()), Cgroup: cgroup, Port: uint32(port),
		Addr: p.Addr().As16()}, nil
}

// Add puts an entry in its deny list, replacing one for the same target.
func (d *DenyLists) Add(e DenyEntry) error {
	v := sensorDenyValue{Expires: d.expiry(e.Expires), Rule: e.Rule}
	switch e.Kind {
	case DenyExec:
		k, err := execKey(e.Binary)
		if err != nil {
			return err
		}
		return d.exec.Put(&k, &v)
	case DenyConnect:
		m, k, err := d.connectKey(e.Prefix, e.Port, e.Cgroup)
		if err != nil {
			return err
		}
		return m.Put(k, &v)
	}
	return fmt.Errorf("unknown deny kind %q", e.Kind)
}

// Remove takes an entry out of its deny list.
func (d *DenyLists) Remove(e DenyEntry) error {
	var err error
	switch e.Kind {
	case DenyExec:
		var k sensorProcInfo
		if k, err = execKey(e.Binary); err == nil {
			err = d.exec.Delete(&k)
		}
	case DenyConnect:
		var m *ebpf.Map
		var k any
		if m, k, err = d.connectKey(e.Prefix, e.Port, e.Cgroup); err == nil {
			err = m.Delete(k)
		}
	default:
		err = fmt.Errorf("unknown deny kind %q", e.Kind)
	}
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("%s: not in the deny list", e)
	}
	return err
}

// List returns every entry of both lists, expired ones included.
func (d *DenyLists) List() ([]DenyEntry, error) {
	var out []DenyEntry
	var ek sensorProcInfo
	var v sensorDenyValue
	it := d.exec.Iterate()
	for it.Next(&ek, &v) {
		b := make([]byte, ek.BinLen)
		for i := range b {
			b[i] = byte(ek.Bin[i])
		}
		out = append(out, DenyEntry{Kind: DenyExec, Binary: string(b), Expires: d.wall(v.Expires), Rule: v.Rule})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("listing the exec deny list: %w", err)
	}
	var ck sensorDenyConnectKey
	it = d.connect.Iterate()
	for it.Next(&ck, &v) {
		var a [4]byte
		putNativeUint32(a[:], ck.Addr)
		out = append(out, DenyEntry{Kind: DenyConnect, Prefix: netip.PrefixFrom(netip.AddrFrom4(a), int(ck.Prefixlen)-128),
			Port: uint16(ck.Port), Cgroup: ck.Cgroup, Expires: d.wall(v.Expires), Rule: v.Rule})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("listing the connect deny list: %w", err)
	}
	var ck6 sensorDenyConnect6Key
	it = d.connect6.Iterate()
	for it.Next(&ck6, &v) {
		out = append(out, DenyEntry{Kind: DenyConnect, Prefix: netip.PrefixFrom(netip.AddrFrom16(ck6.Addr), int(ck6.Prefixlen)-128),
			Port: uint16(ck6.Port), Cgroup: ck6.Cgroup, Expires: d.wall(v.Expires), Rule: v.Rule})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("listing the IPv6 connect deny list: %w", err)
	}
	return out, nil
}

// Expire removes the entries whose time has passed; the kernel already
// ignores them, this frees their room.
func (d *DenyLists) Expire(now time.Time) (int, error) {
	entries, err := d.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !e.Expires.IsZero() && !now.Before(e.Expires) {
			if err := d.Remove(e); err == nil {
				n++
			}
		}
	}
	return n, nil
}
