# Images must be pinned: a version tag or a digest, never ':latest' or no tag.
package k8s.disallow_latest_tag

pod_spec := input.request.object.spec if input.request.kind.kind == "Pod"

pod_spec := input.request.object.spec.template.spec if input.request.kind.kind != "Pod"

containers contains c if some c in pod_spec.containers

containers contains c if some c in pod_spec.initContainers

# The tag of an image reference (undefined when it has none or uses a digest).
image_tag(image) := tag if {
	not contains(image, "@")
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	segs := split(last, ":")
	tag := segs[count(segs) - 1]
}

deny contains msg if {
	some c in containers
	not contains(c.image, "@")
	not image_tag(c.image)
	msg := sprintf("container %s image %s has no tag; pin a version or digest", [c.name, c.image])
}

deny contains msg if {
	some c in containers
	image_tag(c.image) == "latest"
	msg := sprintf("container %s uses the mutable tag 'latest' (%s)", [c.name, c.image])
}
