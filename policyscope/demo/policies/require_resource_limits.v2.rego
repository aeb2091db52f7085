# Version 2.0.0 of k8s.require_resource_limits, the demo's scripted incident
# (policyscope/demo/incident.py): every container declares CPU and memory limits, as in
# 1.0.3, and -- new in 2.0.0 -- the services listed as latency-critical must run with
# Guaranteed QoS (each request equal to its limit). The list is wrong: fraud-scorer runs
# Burstable on purpose (it bursts on traffic peaks), so its deploys, legitimate until now,
# are denied.
package k8s.require_resource_limits

latency_critical := {"fraud-scorer"}

pod_spec := input.request.object.spec if input.request.kind.kind == "Pod"

pod_spec := input.request.object.spec.template.spec if input.request.kind.kind != "Pod"

deny contains msg if {
	some c in pod_spec.containers
	some r in ["cpu", "memory"]
	not c.resources.limits[r]
	msg := sprintf("container %s has no %s limit", [c.name, r])
}

deny contains msg if {
	input.request.object.metadata.labels["app.kubernetes.io/name"] in latency_critical
	some c in pod_spec.containers
	some r in ["cpu", "memory"]
	limit := c.resources.limits[r]
	request := c.resources.requests[r]
	request != limit
	msg := sprintf("container %s %s request %s is not its limit %s (Guaranteed QoS required)", [c.name, r, request, limit])
}
