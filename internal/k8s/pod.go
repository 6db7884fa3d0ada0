package k8s

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod is what the cache keeps of a pod: the fields events are labelled
// with and the ones podSelector policies match on. Everything else of the
// API object is dropped on arrival.
type Pod struct {
	UID         string
	Name        string
	Namespace   string
	NodeName    string
	Labels      map[string]string
	Annotations map[string]string
	// Containers holds the regular, init and ephemeral containers that
	// have been given a runtime id.
	Containers []Container
	// Owners is the owner chain from the pod's controller up, e.g.
	// ReplicaSet then Deployment; empty for a bare pod.
	Owners []Owner
	// ownerRef is the pod's controller reference, resolved into Owners by
	// the cache, which knows the ReplicaSets and Jobs.
	ownerRef *Owner
}

// Container is one container of a pod with the id its runtime gave it.
type Container struct {
	// ID is the runtime's id without the scheme (containerd://...).
	ID   string
	Name string
	// ImageName and ImageTag split the image reference from the spec.
	ImageName string
	ImageTag  string
	// Repo is the image's repository as the runtime resolved it, which
	// containerSelector matches as "repo" (Tetragon's): the status's
	// imageID before its digest, else its image without the tag.
	Repo string
}

// Owner is one link of a pod's owner chain. Kind is the API kind
// (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob).
type Owner struct {
	Kind string
	Name string
}

// Container returns the pod's container with runtime id id.
func (p *Pod) Container(id string) (Container, bool) {
	for _, c := range p.Containers {
		if c.ID == id {
			return c, true
		}
	}
	return Container{}, false
}

// Workload returns the top of the owner chain, or false for a bare pod.
func (p *Pod) Workload() (Owner, bool) {
	if len(p.Owners) == 0 {
		return Owner{}, false
	}
	return p.Owners[len(p.Owners)-1], true
}

// podFromAPI keeps what Pod needs of an API pod.
func podFromAPI(in *corev1.Pod) *Pod {
	p := &Pod{
		UID:         string(in.UID),
		Name:        in.Name,
		Namespace:   in.Namespace,
		NodeName:    in.Spec.NodeName,
		Labels:      in.Labels,
		Annotations: in.Annotations,
	}
	if ref := metav1.GetControllerOf(in); ref != nil {
		p.ownerRef = &Owner{Kind: ref.Kind, Name: ref.Name}
	}
	images := make(map[string]string)
	for _, c := range in.Spec.InitContainers {
		images[c.Name] = c.Image
	}
	for _, c := range in.Spec.Containers {
		images[c.Name] = c.Image
	}
	for _, c := range in.Spec.EphemeralContainers {
		images[c.Name] = c.Image
	}
	for _, statuses := range [][]corev1.ContainerStatus{
		in.Status.InitContainerStatuses, in.Status.ContainerStatuses, in.Status.EphemeralContainerStatuses,
	} {
		for _, s := range statuses {
			id := RuntimeContainerID(s.ContainerID)
			if id == "" {
				continue
			}
			name, tag := SplitImage(images[s.Name])
			p.Containers = append(p.Containers, Container{ID: id, Name: s.Name, ImageName: name, ImageTag: tag, Repo: imageRepo(s.ImageID, s.Image)})
		}
	}
	return p
}

// imageRepo is the repository of a container's image from its status:
// imageID ("docker.io/library/busybox@sha256:...", some runtimes with a
// scheme) before the digest; where that has none (a bare "sha256:..."),
// image ("docker.io/library/busybox:1.36") without its tag.
func imageRepo(imageID, image string) string {
	if repo, _, ok := strings.Cut(RuntimeContainerID(imageID), "@"); ok && repo != "" {
		return repo
	}
	repo, _ := SplitImage(image)
	return repo
}

// RuntimeContainerID strips the runtime scheme from a container status id
// ("containerd://<id>", "cri-o://<id>", "docker://<id>").
func RuntimeContainerID(s string) string {
	if _, id, ok := strings.Cut(s, "://"); ok {
		return id
	}
	return s
}

// SplitImage splits an image reference into its name and tag, as the
// container.image.name and container.image.tags attributes want them. A
// reference with neither tag nor digest means "latest", as it does to the
// runtime; a digest-only reference has no tag; a registry port is not one.
func SplitImage(ref string) (name, tag string) {
	ref, digest, pinned := strings.Cut(ref, "@")
	slash := strings.LastIndexByte(ref, '/')
	if colon := strings.LastIndexByte(ref, ':'); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	if pinned && digest != "" || ref == "" {
		return ref, ""
	}
	return ref, "latest"
}
