# Deployments stay under a replica ceiling, overridable per workload with the
# annotation policyscope.io/max-replicas. The annotation is parsed with to_number:
# a non-numeric value (e.g. "unlimited") is a builtin error, so with strict builtin
# errors the evaluation fails -- this policy produces real 'error' decisions.
package k8s.max_replicas

default_limit := 20

annotations := object.get(input.request.object.metadata, "annotations", {})

limit := to_number(annotations["policyscope.io/max-replicas"])

limit := default_limit if not annotations["policyscope.io/max-replicas"]

deny contains msg if {
	input.request.object.spec.replicas > limit
	msg := sprintf("replicas %d exceed the limit of %d", [input.request.object.spec.replicas, limit])
}
