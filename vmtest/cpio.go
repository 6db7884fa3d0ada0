package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// cpioWriter writes a newc ("070701") cpio archive, the format the kernel
// unpacks as an initramfs. Writing it here rather than with cpio(1) lets the
// archive hold device nodes and root-owned files without root.
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
	// seen holds the mode of every entry written: the kernel's unpacker
	// creates no missing parent directories, so the writer adds them.
	seen map[string]uint32
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1, seen: map[string]uint32{}}
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

// header writes one entry's header and name; the caller writes size bytes
// of data and then c.pad(size).
func (c *cpioWriter) header(name string, mode uint32, size int64, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name != "TRAILER!!!" {
		if _, ok := c.seen[name]; ok {
			c.err = fmt.Errorf("initramfs: %s added twice", name)
			return
		}
		if parent := path.Dir(name); parent != "." {
			c.dir(parent, 0o755)
		}
		c.seen[name] = mode
	}
	nlink := 1
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	_, c.err = fmt.Fprintf(c.w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	if c.err == nil {
		_, c.err = io.WriteString(c.w, name+"\x00")
	}
	c.pad(int64(110 + len(name) + 1))
}

// pad aligns the archive to four bytes after n bytes of header or data.
func (c *cpioWriter) pad(n int64) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

// dir adds a directory, and its parents, unless it is there already.
func (c *cpioWriter) dir(name string, perm uint32) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if mode, ok := c.seen[name]; ok && mode&0o170000 == cpioDir {
		return
	}
	c.header(name, cpioDir|perm, 0, 0, 0)
}

// symlink adds a symbolic link to target.
func (c *cpioWriter) symlink(name, target string) {
	c.header(name, cpioSymlink|0o777, int64(len(target)), 0, 0)
	c.data(strings.NewReader(target), int64(len(target)))
}

// charDev adds a character device node.
func (c *cpioWriter) charDev(name string, perm, major, minor uint32) {
	c.header(name, cpioCharDev|perm, 0, major, minor)
}

// bytes adds a regular file with the given contents.
func (c *cpioWriter) bytes(name string, perm uint32, data []byte) {
	c.header(name, cpioFile|perm, int64(len(data)), 0, 0)
	c.data(strings.NewReader(string(data)), int64(len(data)))
}

// file adds a regular file copied from the host file src, following links.
func (c *cpioWriter) file(name string, perm uint32, src string) {
	if c.err != nil {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		c.err = err
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		c.err = err
		return
	}
	c.header(name, cpioFile|perm, st.Size(), 0, 0)
	c.data(f, st.Size())
}

func (c *cpioWriter) data(r io.Reader, size int64) {
	if c.err != nil {
		return
	}
	n, err := io.Copy(c.w, r)
	if err == nil && n != size {
		err = fmt.Errorf("initramfs: wrote %d bytes of %d", n, size)
	}
	c.err = err
	c.pad(size)
}

// close writes the trailer and flushes; it returns the first error of any
// call before it.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
