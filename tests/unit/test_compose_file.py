"""Static checks of the server-mode deployment files: docker-compose.yml, Dockerfile, .dockerignore.

No Docker engine runs here, so docker-compose.yml is validated against the official Compose
Specification JSON schema, plus the invariants that make the stack actually start.

Vendored schema: tests/data/compose-spec.schema.json
  - what:   the Compose Specification schema (upstream compose-spec/compose-spec,
            schema/compose-spec.json), "$id": "compose_spec.json", "$schema": draft-07,
            title "Compose Specification". Recent revision: it knows top-level `name`,
            `include` and `models`, and service keys such as `provider`, `use_api_socket`.
  - from:   the npm package dclint@3.1.0 (docker-compose-linter, MIT), file
            package/schemas/compose.schema.json, copied byte for byte
            (`npm pack dclint@3.1.0`).
  - sha256: 46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496
  To refresh: `npm pack dclint@<new>` and copy package/schemas/compose.schema.json over it.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "Dockerfile"
DOCKERIGNORE_PATH = ROOT / ".dockerignore"
SCHEMA_PATH = ROOT / "tests" / "data" / "compose-spec.schema.json"
SCHEMA_SHA256 = "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496"

APP_SERVICES = {"migrate", "collector", "worker", "dashboard"}
ALL_SERVICES = APP_SERVICES | {"clickhouse"}


# --------------------------------------------------------------------------- helpers

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: dict[str, str], used: set[str] | None = None) -> str:
    """Compose-style variable interpolation (the subset Compose documents).

    ``$$`` -> ``$``; ``${V}``/``$V``; ``${V:-d}`` (unset or empty), ``${V-d}`` (unset);
    ``${V:?err}``/``${V?err}`` raise; ``${V:+x}``/``${V+x}`` substitute when set.
    Records every variable name it meets in ``used`` and whether it had a fallback.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg = m.group("op"), m.group("arg")
        if used is not None:
            used.add(f"{name}{'' if op is None else op}")
        value = env.get(name)
        if op in (":-", "-"):
            missing = value is None or (op == ":-" and value == "")
            return arg if missing else value
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise KeyError(f"required variable {name} is not set: {arg}")
            return value
        if op in (":+", "+"):
            present = value is not None and (op == "+" or value != "")
            return arg if present else ""
        return value or ""

    return _VAR.sub(repl, text)


def interpolate_tree(node, env: dict[str, str], used: set[str] | None = None):
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, used) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, used) for v in node]
    if isinstance(node, str):
        return interpolate(node, env, used)
    return node


def env_map(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, value = item.partition("=")
            out[key] = value
        return out
    return {k: "" if v is None else str(v) for k, v in env.items()}


def container_ports(service: dict) -> set[int]:
    """Container-side (target) ports a service publishes, short or long syntax."""
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
            continue
        spec = str(entry).split("/", 1)[0]
        target = spec.rsplit(":", 1)[-1]
        lo, _, hi = target.partition("-")
        ports.update(range(int(lo), int(hi or lo) + 1))
    return ports


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def command_argv(service: dict) -> list[str]:
    cmd = service.get("command")
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema) -> Draft7Validator:
    # The upstream file says "$schema": "https://json-schema.org/draft-07/schema" (no '#'),
    # which jsonschema's validator_for() does not map, so pick draft 7 explicitly.
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


@pytest.fixture(scope="module")
def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(raw_compose) -> dict:
    """The file as Compose sees it with an empty environment: every default applied."""
    return interpolate_tree(raw_compose, env={})


def errors_of(validator: Draft7Validator, doc) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]


# --------------------------------------------------------------------------- the schema itself


def test_vendored_schema_is_the_compose_spec():
    data = SCHEMA_PATH.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, (
        "tests/data/compose-spec.schema.json changed; update SCHEMA_SHA256 and the header note"
    )
    schema = json.loads(data)
    assert schema["$id"] == "compose_spec.json"
    assert schema["title"] == "Compose Specification"
    assert "draft-07" in schema["$schema"]
    assert schema["additionalProperties"] is False
    assert {"name", "services", "volumes", "networks"} <= set(schema["properties"])


# --------------------------------------------------------------------------- schema validation


def test_compose_file_is_valid_compose_spec(validator, raw_compose, compose):
    # Compose validates the interpolated model; check the file as written too.
    assert errors_of(validator, raw_compose) == []
    assert errors_of(validator, compose) == []


def test_compose_file_valid_with_overridden_variables(validator, raw_compose):
    env = {
        "CLICKHOUSE_USER": "ingest",
        "CLICKHOUSE_PASSWORD": "s3cret",
        "POLICYSCOPE_OTLP_GRPC_PORT": "14317",
        "POLICYSCOPE_OTLP_HTTP_PORT": "14318",
        "POLICYSCOPE_DASHBOARD_HOST_PORT": "18501",
        "CLICKHOUSE_HTTP_HOST_PORT": "18123",
    }
    doc = interpolate_tree(raw_compose, env)
    assert errors_of(validator, doc) == []
    dsn = urlsplit(env_map(doc["services"]["collector"])["POLICYSCOPE_DSN"])
    assert (dsn.username, dsn.password) == ("ingest", "s3cret")
    assert "14317:4317" in doc["services"]["collector"]["ports"]


BROKEN_MUTATIONS = {
    "unknown top-level key": lambda d: d.update({"servics": d["services"]}),
    "top-level version is not a string": lambda d: d.update({"version": 3.8}),
    "ports as a bare int": lambda d: d["services"]["collector"].update({"ports": 4317}),
    "ports under a wrong key": lambda d: d["services"]["collector"].update(
        {"port": d["services"]["collector"].pop("ports")}
    ),
    "unknown depends_on condition": lambda d: d["services"]["collector"]["depends_on"][
        "migrate"
    ].update({"condition": "service_ready"}),
    "ulimits with only a soft limit": lambda d: d["services"]["clickhouse"]["ulimits"].update(
        {"nofile": {"soft": 262144}}
    ),
    "healthcheck with an unknown key": lambda d: d["services"]["clickhouse"][
        "healthcheck"
    ].update({"command": "true"}),
    "service name with a space": lambda d: d["services"].update(
        {"bad name": {"image": "busybox"}}
    ),
    "volume definition not a mapping": lambda d: d["volumes"].update({"collector-spool": 5}),
}


@pytest.mark.parametrize("mutation", sorted(BROKEN_MUTATIONS))
def test_broken_copy_fails_validation(validator, compose, mutation):
    broken = copy.deepcopy(compose)
    BROKEN_MUTATIONS[mutation](broken)
    assert errors_of(validator, broken), f"schema accepted a broken file ({mutation})"


# --------------------------------------------------------------------------- shape of the stack


def test_services_and_no_version_key(raw_compose, compose):
    assert "version" not in raw_compose, "the Compose spec has no top-level version: drop it"
    assert set(compose["services"]) == ALL_SERVICES


def test_every_variable_has_a_default(raw_compose):
    """`docker compose up` must work without an .env: every ${VAR} carries a fallback."""
    used: set[str] = set()
    interpolate_tree(raw_compose, env={}, used=used)
    bare = sorted(v for v in used if not v.endswith(("-", "+")))  # no op, or a required `?`
    assert bare == [], f"variables without a default (escape container-side ones as $$): {bare}"


def test_clickhouse_image_is_pinned_to_an_lts_release(compose):
    image = compose["services"]["clickhouse"]["image"]
    m = re.fullmatch(r"clickhouse/clickhouse-server:(\d+)\.(\d+)\.(\d+)\.(\d+)(-[a-z]+)?", image)
    assert m, f"pin clickhouse-server to a full version (major.minor.patch.build): {image}"
    assert "latest" not in image
    # ClickHouse LTS lines are YY.3 and YY.8.
    assert int(m.group(2)) in (3, 8), f"{image} is not on an LTS line (YY.3 / YY.8)"


def test_clickhouse_service_settings(compose):
    ch = compose["services"]["clickhouse"]
    env = env_map(ch)
    assert env["CLICKHOUSE_DB"] == "policyscope"
    assert env["CLICKHOUSE_USER"] and env["CLICKHOUSE_PASSWORD"]
    assert env["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] == "1"
    nofile = ch["ulimits"]["nofile"]
    assert int(nofile["soft"]) >= 262144 and int(nofile["hard"]) >= 262144
    test = ch["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    joined = " ".join(test)
    assert "clickhouse-client" in joined or "/ping" in joined
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in ch["volumes"]]
    data = [m for m in mounts if m.split(":")[1] == "/var/lib/clickhouse"]
    assert data and data[0].split(":")[0] in compose["volumes"], "ClickHouse data needs a named volume"
    for published in ch.get("ports", []):
        assert str(published).startswith("127.0.0.1:"), "publish ClickHouse on loopback only"


def test_clickhouse_healthcheck_credentials_are_left_to_the_container(raw_compose):
    # Compose would interpolate a single `$` from the host env (usually empty): the check
    # must read the container's own CLICKHOUSE_USER/PASSWORD, escaped as `$$`.
    test = " ".join(raw_compose["services"]["clickhouse"]["healthcheck"]["test"])
    if "clickhouse-client" in test:
        assert "$${CLICKHOUSE_USER}" in test and "$${CLICKHOUSE_PASSWORD}" in test


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_dsn_points_at_clickhouse(compose, name):
    svc = compose["services"][name]
    ch_env = env_map(compose["services"]["clickhouse"])
    dsn = env_map(svc).get("POLICYSCOPE_DSN")
    assert dsn, f"{name} has no POLICYSCOPE_DSN"
    url = urlsplit(dsn)
    assert url.scheme in ("http", "https")
    assert url.hostname == "clickhouse" and url.hostname in compose["services"]
    assert url.port == 8123
    assert url.path.strip("/") == ch_env["CLICKHOUSE_DB"]
    assert url.username == ch_env["CLICKHOUSE_USER"]
    assert url.password == ch_env["CLICKHOUSE_PASSWORD"]


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_built_from_dockerfile_runs_its_verb(compose, name):
    svc = compose["services"][name]
    build = svc.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context == ".", f"{name} must be built from the repo's Dockerfile (build: .)"
    assert command_argv(svc)[:1] == [name], f"{name} must run `policyscope {name}`"


def test_depends_on_targets_exist_and_order_is_acyclic(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, spec in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec.get("condition") == "service_healthy":
                assert services[dep].get("healthcheck"), f"{dep} has no healthcheck"
            if spec.get("condition") == "service_completed_successfully":
                assert services[dep].get("restart", "no") in ("no", "on-failure")
    # topological sort must consume every service
    remaining = {n: set(depends_on(s)) for n, s in services.items()}
    while remaining:
        ready = [n for n, deps in remaining.items() if not deps & remaining.keys()]
        assert ready, f"depends_on cycle among {sorted(remaining)}"
        for n in ready:
            del remaining[n]


def test_start_order(compose):
    services = compose["services"]
    assert depends_on(services["migrate"])["clickhouse"]["condition"] == "service_healthy"
    assert command_argv(services["migrate"]) == ["migrate"]
    for name in ("collector", "worker", "dashboard"):
        cond = depends_on(services[name])["migrate"]["condition"]
        assert cond == "service_completed_successfully", name


def test_collector_ports_spool_and_restart(compose):
    col = compose["services"]["collector"]
    assert {4317, 4318} <= container_ports(col)
    env = env_map(col)
    assert env.get("POLICYSCOPE_GRPC_PORT", "4317") == "4317"
    assert env.get("POLICYSCOPE_HTTP_PORT", "4318") == "4318"
    assert col["restart"] == "unless-stopped"
    spool = env["POLICYSCOPE_SPOOL_DIR"]
    mounts = {}
    for v in col["volumes"]:
        src, target = (v.split(":")[:2] if isinstance(v, str) else (v["source"], v["target"]))
        mounts[target] = src
    assert spool in mounts, "the spool directory must be on a volume"
    assert mounts[spool] in compose["volumes"], "the spool must be a named volume"


def test_dashboard_publishes_streamlit_port(compose):
    dash = compose["services"]["dashboard"]
    assert 8501 in container_ports(dash)
    assert env_map(dash).get("POLICYSCOPE_DASHBOARD_PORT", "8501") == "8501"


def test_named_volumes_are_declared(compose):
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src and not src.startswith((".", "/", "~", "$")):
                assert src in declared, f"{name} mounts undeclared volume {src}"


def test_healthchecks_do_not_need_curl(compose):
    # python:3.11-slim ships neither curl nor wget.
    for name in APP_SERVICES:
        hc = compose["services"][name].get("healthcheck")
        if hc:
            joined = " ".join(hc["test"]) if isinstance(hc["test"], list) else hc["test"]
            assert "curl" not in joined and "wget" not in joined, name


# --------------------------------------------------------------------------- Dockerfile


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE_PATH.read_text(encoding="utf-8"))


def final_stage(instructions):
    starts = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1]:]


def test_dockerfile_base_entrypoint_and_ports(dockerfile):
    froms = [args.split()[0] for op, args in dockerfile if op == "FROM"]
    assert froms and all(f == "python:3.11-slim" for f in froms), froms
    stage = final_stage(dockerfile)
    entry = [json.loads(args) for op, args in stage if op == "ENTRYPOINT"]
    assert entry and entry[-1] == ["policyscope"], "exec-form ENTRYPOINT [\"policyscope\"]"
    exposed = {int(p.split("/")[0]) for op, args in stage if op == "EXPOSE" for p in args.split()}
    assert {4317, 4318, 8501} <= exposed


def test_dockerfile_installs_project_with_pip(dockerfile):
    runs = " ".join(args for op, args in dockerfile if op == "RUN")
    assert re.search(r"pip install (?:[^&;|]* )?\.(?:\s|$)", runs), "expected `pip install .`"


def test_dockerfile_runs_as_non_root(dockerfile):
    users = [args.split(":")[0] for op, args in final_stage(dockerfile) if op == "USER"]
    assert users, "final stage has no USER"
    assert users[-1] not in ("root", "0")


def test_dockerfile_spool_dir_matches_compose(dockerfile, compose):
    env_text = " ".join(args for op, args in final_stage(dockerfile) if op in ("ENV", "RUN"))
    spool = env_map(compose["services"]["collector"])["POLICYSCOPE_SPOOL_DIR"]
    # created (and chowned) in the image so a fresh named volume inherits the non-root owner
    assert spool in env_text


def test_console_script_matches_entrypoint():
    pyproject = ROOT / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("scripts", {})
    assert "policyscope" in scripts, "ENTRYPOINT runs `policyscope`: declare it in [project.scripts]"


def test_dockerignore_keeps_what_pip_install_needs():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE_PATH.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    excluded = [p for p in patterns if not p.startswith("!")]
    for must_skip in (".git", ".venv", "data"):
        assert must_skip in excluded, f".dockerignore should exclude {must_skip}"
    needed = {"pyproject.toml"}
    pyproject = ROOT / "pyproject.toml"
    if pyproject.exists():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        readme = project.get("project", {}).get("readme")
        if isinstance(readme, str):
            needed.add(readme)
        find = project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
        needed.update(p.rstrip("*").rstrip(".") for p in find.get("include", []))
    for name in sorted(needed):
        hit = [p for p in excluded if fnmatch.fnmatch(name, p.rstrip("/"))]
        assert not hit, f".dockerignore pattern {hit} drops {name}, which `pip install .` needs"


def test_worker_and_dashboard_share_the_slo_files(compose):
    """The dashboard shows the SLOs and file silences the worker evaluates: the same
    directory, from the same host path (UI silences meet in the `silences` table)."""
    def slo_mount(service: dict) -> tuple[str, str]:
        target = service["environment"]["POLICYSCOPE_SLO_DIR"]
        sources = [v.split(":")[0] for v in service.get("volumes", [])
                   if isinstance(v, str) and v.split(":")[1] == target]
        assert len(sources) == 1, service.get("volumes")
        return target, sources[0]

    worker, dashboard = compose["services"]["worker"], compose["services"]["dashboard"]
    assert slo_mount(worker) == slo_mount(dashboard) == ("/etc/policyscope/slo",
                                                         "./examples/slo")
    for service in (worker, dashboard):
        assert service["environment"]["POLICYSCOPE_DSN"] == \
            compose["services"]["collector"]["environment"]["POLICYSCOPE_DSN"]
