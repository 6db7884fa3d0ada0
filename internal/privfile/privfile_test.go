package privfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/internal/privfile"
	"github.com/vigilsec/vigil/internal/testenv"
)

// nobody is the uid the tests give files another user would plant.
const nobody = 65534

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func wantRefused(t *testing.T, err error, path string, words ...string) {
	t.Helper()
	if !errors.Is(err, privfile.ErrUnsafe) {
		t.Fatalf("err = %v, want a refusal (privfile.ErrUnsafe) of %s", err, path)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("err %q does not name %s", err, path)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err %q does not say %q", err, w)
		}
	}
}

// plant makes a file at path as another user would: owned by nobody.
func plant(t *testing.T, path string, perm fs.FileMode) {
	t.Helper()
	testenv.RequireRoot(t)
	if err := os.WriteFile(path, []byte("planted\n"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpenAppendCreatesAPrivateFileInAPrivateDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "events.log")
	f, err := privfile.OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("one\n")
	f.Close()
	if m := mode(t, path); m != 0o600 {
		t.Errorf("file mode %04o, want 0600", m)
	}
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("directory mode %04o, want 0700", m)
	}
	// An existing private file is appended to.
	f, err = privfile.OpenAppend(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two\n")
	f.Close()
	if got := content(t, path); got != "one\ntwo\n" {
		t.Errorf("content %q", got)
	}
}

func TestOpenAppendRefusesAFileAnotherUserPlanted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	plant(t, path, 0o600)
	_, err := privfile.OpenAppend(path)
	wantRefused(t, err, path, "owned by nobody (uid 65534)", "not by root (uid 0)")
	if got := content(t, path); got != "planted\n" {
		t.Errorf("the planted file was written: %q", got)
	}
}

func TestOpenAppendRefusesAFileOthersCanWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	os.WriteFile(path, nil, 0o600)
	os.Chmod(path, 0o666)
	_, err := privfile.OpenAppend(path)
	wantRefused(t, err, path, "writable by group or others (mode 0666)")
}

func TestOpenAppendDoesNotFollowASymlink(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "events.log")
	os.WriteFile(target, []byte("kept\n"), 0o600)
	os.Symlink(target, link)
	_, err := privfile.OpenAppend(link)
	wantRefused(t, err, link, "symbolic link")
	if got := content(t, target); got != "kept\n" {
		t.Errorf("the link's target was written: %q", got)
	}
}

func TestOpenAppendRefusesASecondNameOfAnotherFile(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "passwd"), filepath.Join(dir, "events.log")
	os.WriteFile(target, []byte("kept\n"), 0o600)
	os.Link(target, link)
	_, err := privfile.OpenAppend(link)
	wantRefused(t, err, link, "2 hard links")
	if got := content(t, target); got != "kept\n" {
		t.Errorf("the other file was written: %q", got)
	}
}

func TestOpenAppendRefusesAFIFOWithoutBlocking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := privfile.OpenAppend(path)
	// No reader: a blocking open would hang here. Opening a FIFO for
	// writing without a reader fails with ENXIO when non-blocking.
	if err == nil {
		t.Fatal("a FIFO was opened as an event file")
	}
}

func TestDirRefusesADirectoryOnTheWayThatAnotherUserOwns(t *testing.T) {
	testenv.RequireRoot(t)
	theirs := filepath.Join(t.TempDir(), "theirs")
	os.Mkdir(theirs, 0o755)
	os.Chown(theirs, nobody, nobody)
	// They could rename "sub" away and put their own in its place.
	sub := filepath.Join(theirs, "sub")
	os.Mkdir(sub, 0o700)
	err := privfile.Dir(sub)
	wantRefused(t, err, theirs, "owned by nobody")
	_, err = privfile.OpenAppend(filepath.Join(sub, "events.log"))
	wantRefused(t, err, theirs, "owned by nobody")
}

func TestDirRefusesASymlinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real"), filepath.Join(dir, "link")
	os.Mkdir(real, 0o700)
	os.Symlink(real, link)
	wantRefused(t, privfile.Dir(link), link, "symbolic link")
}

func TestDirNarrowsVigilsOwnDirectories(t *testing.T) {
	own := filepath.Join(t.TempDir(), "vigil")
	other := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(own, 0o755)
	os.Mkdir(other, 0o755)
	defer func(saved []string) { privfile.OwnDirs = saved }(privfile.OwnDirs)
	privfile.OwnDirs = append(privfile.OwnDirs, own)
	if err := privfile.Dir(own); err != nil {
		t.Fatal(err)
	}
	if err := privfile.Dir(other); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, own); m != 0o700 {
		t.Errorf("Vigil's own directory is %04o, want 0700", m)
	}
	if m := mode(t, other); m != 0o755 {
		t.Errorf("a directory Vigil does not own was changed to %04o", m)
	}
}

func TestWriteFileReplacesAPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "status.json")
	for _, s := range []string{"first", "second"} {
		if err := privfile.WriteFile(path, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if got := content(t, path); got != s {
			t.Errorf("content %q, want %q", got, s)
		}
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("file mode %04o, want 0600", m)
	}
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("directory mode %04o, want 0700", m)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteFileRefusesWhatAnotherUserPutAtThePath(t *testing.T) {
	dir := t.TempDir()
	planted := filepath.Join(dir, "planted.json")
	plant(t, planted, 0o644)
	wantRefused(t, privfile.WriteFile(planted, []byte("x")), planted, "owned by nobody")
	if got := content(t, planted); got != "planted\n" {
		t.Errorf("the planted file was replaced: %q", got)
	}

	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "status.json")
	os.WriteFile(target, []byte("kept\n"), 0o600)
	os.Symlink(target, link)
	wantRefused(t, privfile.WriteFile(link, []byte("x")), link, "symbolic link")
	if got := content(t, target); got != "kept\n" {
		t.Errorf("the link's target was written: %q", got)
	}
}
