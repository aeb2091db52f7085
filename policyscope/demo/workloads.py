"""A seeded fleet of Kubernetes workloads and the AdmissionReview requests they cause.

Everything random comes from the `random.Random` passed in, so a seed reproduces the
fleet and the request sequence exactly. A workload carries a set of *flaws*, named by
the policy id each one violates; `admission_review` renders the flaws into the spec, so
the Rego policies find them by themselves (nothing here decides an outcome).
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

NON_ROOT = "k8s.require-non-root"
LATEST_TAG = "k8s.disallow-latest-tag"
LIMITS = "k8s.require-resource-limits"
REGISTRY = "k8s.allowed-registries"
TEAM_LABEL = "k8s.require-team-label"
MAX_REPLICAS = "k8s.max-replicas"
#: flaw → relative weight when a workload gets a flaw.
FLAW_WEIGHTS = {TEAM_LABEL: 25, LIMITS: 25, LATEST_TAG: 20, NON_ROOT: 15, REGISTRY: 8, MAX_REPLICAS: 7}

TEAMS: dict[str, tuple[str, ...]] = {
    "payments": ("checkout-api", "payment-gateway", "ledger-worker", "fraud-scorer"),
    "identity": ("auth-service", "user-profile", "token-issuer"),
    "search": ("search-api", "indexer", "query-suggest"),
    "platform": ("ingress-gateway", "cert-manager", "log-forwarder"),
    "data": ("etl-runner", "feature-store", "notebook-server"),
}
#: cluster → deployment environment.
CLUSTERS: dict[str, str] = {"prod-eu-1": "production", "prod-us-1": "production", "staging-1": "staging"}
#: namespaces where every policy runs in audit mode (no enforcement).
AUDIT_ONLY_NAMESPACES = frozenset({"data-sandbox"})
#: services that run as bare Pods rather than Deployments.
POD_SERVICES = frozenset({"notebook-server"})
HUMANS: dict[str, tuple[str, ...]] = {
    "payments": ("alice@acme.example", "bob@acme.example"),
    "identity": ("carol@acme.example",),
    "search": ("dan@acme.example", "erin@acme.example"),
    "platform": ("frank@acme.example", "grace@acme.example"),
    "data": ("heidi@acme.example", "ivan@acme.example"),
}
CI_ACTORS = ("system:serviceaccount:argocd:argocd-application-controller",
             "system:serviceaccount:ci:github-actions-deployer")
REGISTRY_HOST = "registry.acme.internal"
SIDECAR_IMAGE = "registry.acme.internal/platform/envoy:1.29.4"


@dataclass
class Workload:
    """One workload in one cluster; `flaws` (policy ids) is mutable state."""

    cluster: str
    environment: str
    namespace: str
    kind: str
    name: str
    team: str
    service: str
    uid: str
    version: str
    replicas: int
    sidecar: bool
    has_sbom: bool
    max_replicas_annotation: str | None = None
    flaws: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        """Stable workload id: `cluster/namespace/Kind/name` (= policy.resource.id)."""
        return f"{self.cluster}/{self.namespace}/{self.kind}/{self.name}"

    @property
    def enforced(self) -> bool:
        """False in audit-only namespaces, where no policy is in enforce mode."""
        return self.namespace not in AUDIT_ONLY_NAMESPACES

    @property
    def image(self) -> str:
        """The main container image, rendered from the flaws."""
        tag = "latest" if LATEST_TAG in self.flaws else self.version
        if REGISTRY in self.flaws:
            return f"docker.io/{self.team}{self.service.replace('-', '')}/{self.service}:{tag}"
        return f"{REGISTRY_HOST}/{self.team}/{self.service}:{tag}"


def _namespace(team: str, service: str, environment: str) -> str:
    if service in POD_SERVICES:
        return "data-sandbox"
    if team == "platform":
        return "platform-system"
    return team if environment == "production" else f"{team}-staging"


def _seeded_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pick_flaw(rng: random.Random, exclude: set[str]) -> str | None:
    choices = [f for f in FLAW_WEIGHTS if f not in exclude]
    if not choices:
        return None
    return rng.choices(choices, weights=[FLAW_WEIGHTS[f] for f in choices])[0]


def generate_fleet(rng: random.Random) -> list[Workload]:
    """The fleet: every team in every cluster; ~20% (prod) / ~40% (staging) flawed.

    Exactly one Deployment carries a non-numeric `policyscope.io/max-replicas`
    annotation, which makes `k8s.max-replicas` fail with a real evaluation error
    (about 0.4% of all decisions).
    """
    fleet: list[Workload] = []
    for cluster, env in CLUSTERS.items():
        for team, services in TEAMS.items():
            chosen = [s for s in services if env == "staging" or rng.random() < 0.85] or [services[0]]
            for service in chosen:
                kind = "Pod" if service in POD_SERVICES else "Deployment"
                suffix = f"-{rng.getrandbits(20):05x}" if kind == "Pod" else ""
                w = Workload(
                    cluster=cluster, environment=env, namespace=_namespace(team, service, env),
                    kind=kind, name=service + suffix, team=team, service=service,
                    uid=_seeded_uuid(rng),
                    version=f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
                    replicas=1 if kind == "Pod" else rng.choice((2, 2, 3, 3, 4, 6, 8)),
                    sidecar=rng.random() < 0.3, has_sbom=rng.random() < 0.8,
                )
                if kind == "Deployment" and rng.random() < 0.1:
                    w.max_replicas_annotation = str(rng.choice((30, 40, 50)))
                if rng.random() < (0.4 if env == "staging" else 0.2):
                    while True:
                        w.flaws.add(_pick_flaw(rng, w.flaws))
                        if rng.random() >= 0.2:
                            break
                if kind == "Pod":
                    w.flaws.discard(MAX_REPLICAS)
                fleet.append(w)
    deployments = [w for w in fleet if w.kind == "Deployment"]
    rng.choice(deployments).max_replicas_annotation = "unlimited"
    return fleet


def evolve(workload: Workload, rng: random.Random, p_fix: float = 0.04, p_break: float = 0.01) -> None:
    """A new rollout of `workload`: maybe a version bump, a fixed flaw or a new flaw."""
    if rng.random() < 0.5:
        major, minor, patch = (int(x) for x in workload.version.split("."))
        workload.version = f"{major}.{minor}.{patch + 1}"
    if workload.flaws and rng.random() < p_fix:
        workload.flaws.discard(rng.choice(sorted(workload.flaws)))
    elif rng.random() < p_break:
        exclude = workload.flaws | ({MAX_REPLICAS} if workload.kind == "Pod" else set())
        flaw = _pick_flaw(rng, exclude)
        if flaw:
            workload.flaws.add(flaw)


def pick_workload(fleet: list[Workload], rng: random.Random) -> Workload:
    """Staging deploys 1.5x as often as production."""
    weights = [1.5 if w.environment == "staging" else 1.0 for w in fleet]
    return rng.choices(fleet, weights=weights)[0]


def pick_actor(workload: Workload, rng: random.Random) -> str:
    """70% CI service accounts, the rest a human from the owning team."""
    if rng.random() < 0.7:
        return rng.choice(CI_ACTORS)
    return rng.choice(HUMANS[workload.team])


def _containers(w: Workload) -> list[dict]:
    main: dict = {"name": w.service, "image": w.image,
                  "ports": [{"containerPort": 8080}],
                  "securityContext": {"allowPrivilegeEscalation": False}}
    if NON_ROOT in w.flaws:
        main["securityContext"]["runAsUser"] = 0
    if LIMITS not in w.flaws:
        main["resources"] = {"requests": {"cpu": "250m", "memory": "256Mi"},
                             "limits": {"cpu": "1", "memory": "512Mi"}}
    else:
        main["resources"] = {"requests": {"cpu": "250m", "memory": "256Mi"}}
    containers = [main]
    if w.sidecar:
        containers.append({"name": "envoy", "image": SIDECAR_IMAGE,
                           "securityContext": {"runAsNonRoot": True},
                           "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}}})
    return containers


def admission_review(w: Workload, rng: random.Random, actor: str, operation: str = "UPDATE") -> dict:
    """An admission.k8s.io/v1 AdmissionReview for `w` as it currently is."""
    labels = {"team": w.team, "app.kubernetes.io/name": w.service}
    if TEAM_LABEL in w.flaws:
        del labels["team"]
    pod_spec: dict = {"containers": _containers(w), "serviceAccountName": w.service,
                      "securityContext": {"runAsNonRoot": NON_ROOT not in w.flaws}}
    metadata: dict = {"name": w.name, "namespace": w.namespace, "uid": w.uid, "labels": labels}
    if w.max_replicas_annotation is not None:
        metadata["annotations"] = {"policyscope.io/max-replicas": w.max_replicas_annotation}
    if w.kind == "Pod":
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
        group, resource = "", "pods"
    else:
        replicas = rng.randint(24, 40) if MAX_REPLICAS in w.flaws else w.replicas
        obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": w.service}},
                        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec}}}
        group, resource = "apps", "deployments"
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": _seeded_uuid(rng),
                        "kind": {"group": group, "version": "v1", "kind": w.kind},
                        "resource": {"group": group, "version": "v1", "resource": resource},
                        "name": w.name, "namespace": w.namespace, "operation": operation,
                        "userInfo": {"username": actor}, "object": obj}}
