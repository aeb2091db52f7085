# Workloads carry an owning team and an app name label.
package k8s.require_team_label

required := ["team", "app.kubernetes.io/name"]

labels := object.get(input.request.object.metadata, "labels", {})

deny contains msg if {
	some label in required
	not labels[label]
	msg := sprintf("%s %s is missing required label %s", [input.request.kind.kind, input.request.object.metadata.name, label])
}
