//go:build tools

// Package tools pins the Kubernetes commands Vigil's tests run, for
// `go build`: kube-apiserver for the Kubernetes tests of make test, and the
// rest of a node (controller manager, scheduler, kubelet, kubectl) for the
// node lane, make e2e. scripts/install-deps.sh builds them into one cache
// directory.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
