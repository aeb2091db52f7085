"""The importers' config section (`imports:` in the config file): where `policyscope import`
sends its events and the source facts and labels it applies. Every setting is also
`POLICYSCOPE_<NAME>` and a flag of `policyscope import` (`--endpoint` for import_endpoint,
`--team` for import_team, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from core.config import Section


class ImportConfig(Section):
    import_endpoint: str | None = Field(None, description=(
        "send imported events to this collector over OTLP/HTTP (http://host:4318); unset: "
        "write them to the storage DSN directly"))
    import_token: SecretStr | None = Field(None, description=(
        "bearer token for import_endpoint (a secret: never echoed or logged); prefer "
        "POLICYSCOPE_IMPORT_TOKEN or import_token_file"))
    import_token_file: Path | None = Field(None, description=(
        "a file holding the token (trailing whitespace ignored), e.g. a mounted secret"))
    import_team: str = Field("", description="team.name of the imported events")
    import_environment: str = Field("", description="deployment.environment.name")
    import_cluster: str = Field("", description=(
        "k8s.cluster.name; also part of the state sources' keys (policyreport:<cluster>/...)"))
    import_pipeline: str = Field("", description=(
        "CI pipeline name [default: GITHUB_WORKFLOW / CI_PIPELINE_NAME]"))
    import_run_id: str = Field("", description=(
        "CI pipeline run id [default: GITHUB_RUN_ID / CI_PIPELINE_ID]"))
    import_commit: str = Field("", description="commit [default: GITHUB_SHA / CI_COMMIT_SHA]")
    import_repository: str = Field("", description=(
        "repository URL [default: GITHUB_SERVER_URL/GITHUB_REPOSITORY / CI_PROJECT_URL]"))
    import_team_label: str = Field("team", description=(
        "inventory: the workload label (else annotation) naming its team"))
    import_enforced_label: str = Field("policyscope.io/enforced", description=(
        "inventory: the workload label or annotation saying true/false: under enforcement"))
    import_diff: bool = Field(True, description=(
        "diff state-only sources (PolicyReports, Gatekeeper status) against their stored "
        "snapshot into opened / remediated violations; needs the storage DSN"))
    import_prune: bool = Field(False, description=(
        "policyreport: the List is the cluster's complete set of reports; reports stored "
        "before but absent now are diffed as empty (their violations remediated)"))

    def token(self) -> str | None:
        """The bearer token: import_token, else the first line of import_token_file."""
        if self.import_token is not None:
            return self.import_token.get_secret_value()
        if self.import_token_file is not None:
            return self.import_token_file.read_text().strip() or None
        return None
