package kernel_test

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/kernel"
	"github.com/vigilsec/vigil/internal/policy"
	"github.com/vigilsec/vigil/internal/testenv"
)

// Post imaHash on an LSM hook: the event of an exec carries the IMA hash
// of the file executed, which must be the digest Go computes of its bytes
// with the algorithm IMA names. Without BPF LSM the policy is refused.
func TestLSMImaHash(t *testing.T) {
	testenv.RequireBPF(t)
	bin := copyBinary(t, "/bin/true", "vigil-ima-true")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	s, ph, ok := installIfSupported(t, &policy.TracingPolicy{
		APIVersion: policy.APIVersion, Kind: policy.KindTracingPolicy,
		Metadata: policy.ObjectMeta{Name: "ima"},
		Spec: policy.Spec{LsmHooks: []policy.LsmHookSpec{{
			Hook: "bprm_check_security",
			Args: []policy.ArgSpec{{Index: 0, Type: "linux_binprm"}},
			Selectors: []policy.SelectorSpec{{
				MatchArgs:    []policy.ArgSelector{{Index: 0, Operator: "Postfix", Values: []string{"/vigil-ima-true"}}},
				MatchActions: []policy.ActionSelector{{Action: "Post", ImaHash: true}},
			}},
		}}},
	}, testenv.KernelHas(t, kernel.FeatureLSM), "lsm")
	if !ok {
		return
	}
	t.Logf("mechanism %s", ph.Hooks[0].Mechanism)
	recs := hookRecords(t, s, func() []int { return []int{runCmd(t, bin), runCmd(t, "/bin/true")} })
	if len(recs) != 1 {
		t.Fatalf("records %+v: want the exec of %s", recs, bin)
	}
	algo, digest, _ := strings.Cut(recs[0].ImaHash, ":")
	sums := map[string]func([]byte) []byte{
		"md5":    func(b []byte) []byte { s := md5.Sum(b); return s[:] },
		"sha1":   func(b []byte) []byte { s := sha1.Sum(b); return s[:] },
		"sha256": func(b []byte) []byte { s := sha256.Sum256(b); return s[:] },
		"sha512": func(b []byte) []byte { s := sha512.Sum512(b); return s[:] },
	}
	sum, known := sums[algo]
	if !known {
		t.Fatalf("IMA hash %q: an algorithm this test cannot check", recs[0].ImaHash)
	}
	if want := hex.EncodeToString(sum(data)); digest != want {
		t.Errorf("IMA hash %s, want %s:%s", recs[0].ImaHash, algo, want)
	}
	if recs[0].Args[0].Str != bin {
		t.Errorf("binprm %q, want %s", recs[0].Args[0].Str, bin)
	}
}
