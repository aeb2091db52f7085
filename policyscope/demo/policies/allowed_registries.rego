# Images come only from the company's registries.
package k8s.allowed_registries

allowed := ["registry.acme.internal/", "ghcr.io/acme/", "public.ecr.aws/acme/"]

pod_spec := input.request.object.spec if input.request.kind.kind == "Pod"

pod_spec := input.request.object.spec.template.spec if input.request.kind.kind != "Pod"

containers contains c if some c in pod_spec.containers

containers contains c if some c in pod_spec.initContainers

allowed_image(image) if {
	some prefix in allowed
	startswith(image, prefix)
}

deny contains msg if {
	some c in containers
	not allowed_image(c.image)
	msg := sprintf("container %s image %s is not from an allowed registry", [c.name, c.image])
}
