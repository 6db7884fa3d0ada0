package redact

import (
	"regexp"
	"slices"
	"testing"
)

func TestDefaultsHideSecretsAndKeepTheRest(t *testing.T) {
	r := New(Defaults)
	for _, c := range []struct{ in, want []string }{
		{[]string{"mysql", "-u", "root", "--password=hunter2", "db"}, []string{"mysql", "-u", "root", "--password=*****", "db"}},
		{[]string{"app", "--token", "abc.def", "--verbose"}, []string{"app", "--token", "*****", "--verbose"}},
		{[]string{"curl", "-H", "Authorization: Bearer eyJhbGciOi", "https://api"}, []string{"curl", "-H", "Authorization: Bearer *****", "https://api"}},
		{[]string{"git", "clone", "https://bob:s3cret@git.example.com/r.git"}, []string{"git", "clone", "https://bob:*****@git.example.com/r.git"}},
		{[]string{"env", "DB_PASSWORD=pw", "run"}, []string{"env", "DB_PASSWORD=*****", "run"}},
		{[]string{"aws", "configure", "set", "aws_access_key_id", "AKIAIOSFODNN7EXAMPLE"}, []string{"aws", "configure", "set", "aws_access_key_id", "*****"}},
		{[]string{"ls", "-la", "/etc/passwd"}, []string{"ls", "-la", "/etc/passwd"}},
		{[]string{"ssh", "-p", "22", "host"}, []string{"ssh", "-p", "22", "host"}},
	} {
		if got := r.Args("/usr/bin/x", c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFilterAppliesToItsBinariesOnly(t *testing.T) {
	res, err := Compile([]string{`-p(\S+)`})
	if err != nil {
		t.Fatal(err)
	}
	r := New([]Filter{{Binaries: []string{"/usr/bin/mysql"}, Redact: res}})
	if got := r.Args("/usr/bin/mysql", []string{"mysql", "-phunter2"}); got[1] != "-p*****" {
		t.Errorf("mysql: %q", got)
	}
	if got := r.Args("/usr/bin/grep", []string{"grep", "-pattern"}); got[1] != "-pattern" {
		t.Errorf("grep: %q", got)
	}
}

func TestCompileRefusesWhatCannotRedact(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{`(`, "redact[0]: error parsing regexp: missing closing ): `(`"},
		{`password=\S+`, `redact[0]: "password=\\S+" has no capture group: nothing to hide`},
	} {
		if _, err := Compile([]string{c.expr}); err == nil || err.Error() != c.want {
			t.Errorf("%q: error %v, want %q", c.expr, err, c.want)
		}
	}
	_ = regexp.MustCompile
}

// Captures that overlap hide their union behind one mask, leaking no byte
// of either.
func TestOverlappingCapturesAreOneMask(t *testing.T) {
	a, _ := Compile([]string{`(abc)`})
	b, _ := Compile([]string{`(bcd)`})
	r := New([]Filter{{Redact: a}, {Redact: b}})
	if got := r.Args("/bin/x", []string{"x", "xabcdy", "--k", "ab"}); !slices.Equal(got, []string{"x", "x*****y", "--k", "ab"}) {
		t.Errorf("got %q", got)
	}
}
