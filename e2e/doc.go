// Package e2e is the node lane, `make e2e`: a one-node Kubernetes cluster
// built on this machine from real parts and offline — etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kubelet (v1.37.2, built from
// the Go module proxy by scripts/install-deps.sh node), containerd with its
// CRI plugin and runc, the bridge and host-local CNI plugins — and Vigil's
// chart installed on it from the image `make image` builds.
//
// The node lives in a network namespace of its own, so the lane uses no
// address of the machine's: the kubelet needs a node IP that is not
// loopback, which a veth pair inside that namespace gives. Everything it
// starts it stops, and it removes the pods, cgroups and mounts the node
// made. The tests carry the build tag e2e: `go test ./...` does not run
// them.
package e2e
