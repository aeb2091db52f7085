# Containers must not run as root: runAsNonRoot=true on the container or the pod
# (and not overridden to false on the container), and never runAsUser 0.
package k8s.require_non_root

pod_spec := input.request.object.spec if input.request.kind.kind == "Pod"

pod_spec := input.request.object.spec.template.spec if input.request.kind.kind != "Pod"

containers contains c if some c in pod_spec.containers

containers contains c if some c in pod_spec.initContainers

pod_non_root if pod_spec.securityContext.runAsNonRoot == true

non_root(c) if c.securityContext.runAsNonRoot == true

non_root(c) if {
	pod_non_root
	not c.securityContext.runAsNonRoot == false
}

deny contains msg if {
	some c in containers
	not non_root(c)
	msg := sprintf("container %s must set securityContext.runAsNonRoot=true", [c.name])
}

deny contains msg if {
	some c in containers
	c.securityContext.runAsUser == 0
	msg := sprintf("container %s must not run as UID 0", [c.name])
}
