# Every container declares CPU and memory limits.
package k8s.require_resource_limits

pod_spec := input.request.object.spec if input.request.kind.kind == "Pod"

pod_spec := input.request.object.spec.template.spec if input.request.kind.kind != "Pod"

deny contains msg if {
	some c in pod_spec.containers
	some r in ["cpu", "memory"]
	not c.resources.limits[r]
	msg := sprintf("container %s has no %s limit", [c.name, r])
}
