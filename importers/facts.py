"""The source facts an import can carry on every event: who owns what was imported (team),
where it runs (environment, cluster) and, for CI scanners, which pipeline run, commit and
repository produced it. They go on the OTLP resource of the import's requests, so a record's
own attribute (a PolicyReport's namespace, an inventory row's team) still wins.

Flags give them (`--team`, `--environment`, `--cluster`, `--pipeline`, `--run-id`,
`--commit`, `--repository`); CI facts not given default to what the CI sets in the
environment of its jobs (`ci_facts`): GitHub Actions (`GITHUB_WORKFLOW`, `GITHUB_RUN_ID`,
`GITHUB_SHA`, `GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`) and GitLab CI (`CI_PIPELINE_NAME`,
`CI_PIPELINE_ID`, `CI_COMMIT_SHA`, `CI_PROJECT_URL`). The caller passes the environment (the
app shell reads it), so this module stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

# fact -> OTLP attribute (OpenTelemetry names where they exist: cicd.*, vcs.*)
ATTRIBUTES = {
    "team": "team.name",
    "environment": "deployment.environment.name",
    "cluster": "k8s.cluster.name",
    "pipeline": "cicd.pipeline.name",
    "run_id": "cicd.pipeline.run.id",
    "commit": "vcs.ref.head.revision",
    "repository": "vcs.repository.url.full",
}


@dataclass(frozen=True)
class SourceFacts:
    team: str = ""
    environment: str = ""
    cluster: str = ""
    pipeline: str = ""
    run_id: str = ""
    commit: str = ""
    repository: str = ""

    def resource(self) -> dict[str, Any]:
        """The facts given, as resource attributes."""
        return {ATTRIBUTES[name]: value for name, value in self.__dict__.items() if value}

    def with_ci(self, env: Mapping[str, str]) -> "SourceFacts":
        """These facts, the CI ones not given filled from the CI's environment variables."""
        found = ci_facts(env)
        return replace(self, **{k: v for k, v in found.items() if not getattr(self, k)})


def ci_facts(env: Mapping[str, str]) -> dict[str, str]:
    """pipeline, run_id, commit, repository as GitHub Actions or GitLab CI set them; {} when
    neither runs this job."""
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repository = env.get("GITHUB_REPOSITORY", "")
        return _given(pipeline=env.get("GITHUB_WORKFLOW", ""),
                      run_id=env.get("GITHUB_RUN_ID", ""), commit=env.get("GITHUB_SHA", ""),
                      repository=f"{server}/{repository}" if repository else "")
    if env.get("GITLAB_CI") == "true" or env.get("CI_PIPELINE_ID"):
        return _given(pipeline=env.get("CI_PIPELINE_NAME") or env.get("CI_PROJECT_PATH", ""),
                      run_id=env.get("CI_PIPELINE_ID", ""), commit=env.get("CI_COMMIT_SHA", ""),
                      repository=env.get("CI_PROJECT_URL", ""))
    return {}


def _given(**values: str) -> dict[str, str]:
    return {k: v for k, v in values.items() if v}
