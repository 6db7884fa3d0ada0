package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PrebuiltDir is where, beside a test package's C targets in testdata/,
// vmtest puts the binaries it built from them on the host for a guest that
// has no compiler.
const PrebuiltDir = "bin"

// CompileC compiles the C file src into out with gcc -O1, the flags its
// first line gives as "/* cflags: ... */", and extra.
func CompileC(src, out string, extra ...string) error {
	return CompileCWith("gcc", src, out, extra...)
}

// CompileCWith is CompileC with another compiler, such as a cross
// compiler for the VM lane's guests of other architectures.
func CompileCWith(cc, src, out string, extra ...string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	args := []string{"-O1"}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	if f, ok := strings.CutPrefix(string(first), "/* cflags: "); ok {
		args = append(args, strings.Fields(strings.TrimSuffix(f, "*/"))...)
	}
	args = append(append(args, extra...), "-o", out, src)
	if o, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", cc, strings.Join(args, " "), err, o)
	}
	return nil
}

// PrebuiltC is the path of the binary vmtest built from testdata/name
// (name without ".c" under testdata/PrebuiltDir).
func PrebuiltC(name string) string {
	return filepath.Join("testdata", PrebuiltDir, strings.TrimSuffix(name, ".c"))
}
