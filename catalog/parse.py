"""Reading catalog files into `Policy` records, with every problem collected, not just the
first: each `Problem` names the file, the line (from the YAML parser's marks), the key path
and what was expected. Pure apart from reading the files.

A catalog file is one YAML document, a mapping with a `policies` list:

    policies:
      - id: k8s.require-non-root
        title: Containers run as a non-root user
        owner: platform            # the owning team
        category: workload-hardening
        severity: high             # critical, high, medium, low or info
        controls:
          - {framework: CIS Kubernetes Benchmark v1.8, control: 5.2.7}
          - {framework: NIST SP 800-53 Rev. 5, control: AC-6}
        runbook: https://example.com/runbooks/k8s.require-non-root.md
        engine: opa                # optional
        description: ...           # optional

The problems found: YAML that does not parse; a key given twice in one mapping; an unknown
key (with the nearest known one); a missing required key; a value of the wrong shape (a
list where a string belongs, an empty string); an unknown severity; a runbook that is not
an http(s) URL with a host (it is rendered as a link: `javascript:` and `file:` are
refused); an id that holds whitespace; a control given twice; and an id given twice,
within a file or across files (naming where it was first given). Values are read as the
text written in the file (`control: 5.2` stays "5.2"), trimmed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from catalog.model import KEYS, REQUIRED, Catalog, Control, Policy
from schemas.events import SEVERITIES

SUFFIXES = (".yaml", ".yml")
RUNBOOK_SCHEMES = ("http", "https")
_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")
_CONTROL_KEYS = ("framework", "control")
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_CORE = "tag:yaml.org,2002:"


@dataclass(frozen=True, order=True)
class Problem:
    """What is wrong, where: `line` is 1-based (0 for the file as a whole), `path` the key
    path inside the document (`policies[2].severity`; empty for the file)."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path \
            else f"{where}: {self.message}"


class CatalogInvalid(ValueError):
    """The catalog has problems; `problems` lists every one. Nothing was stored."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        super().__init__("; ".join(map(str, self.problems)) or "invalid catalog")


@dataclass(frozen=True)
class Checked:
    """The outcome of reading catalog files: the policies that are valid on their own, every
    problem, and the files read."""

    policies: tuple[Policy, ...] = ()
    problems: tuple[Problem, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def catalog(self) -> Catalog:
        """The catalog; raises CatalogInvalid when there is any problem (never a partial)."""
        if self.problems:
            raise CatalogInvalid(self.problems)
        return Catalog.of(self.policies)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "nothing" if node.tag == _NULL else f"{node.value!r}"


@dataclass
class _Reader:
    """Walks one document's nodes, collecting problems against `source`."""

    source: str
    problems: list[Problem] = field(default_factory=list)

    def problem(self, node: Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(Problem(self.source, line, path, message))

    def mapping(self, node: Node, path: str, known: Sequence[str], what: str
                ) -> dict[str, tuple[Node, Node]] | None:
        """key -> (key node, value node); merge keys (`<<: *defaults`) give defaults."""
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected {what} (a mapping), got {_kind(node)}")
            return None
        own: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) \
                    else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode):
                        for k, v in source.value:
                            if isinstance(k, ScalarNode):
                                merged.setdefault(k.value, (k, v))
                    else:
                        self.problem(source, path, "a merge key (<<) takes a mapping")
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, path, f"a key must be a name, got {_kind(key_node)}")
                continue
            key = key_node.value
            here = f"{path}.{key}" if path else key
            if key in own:
                first = own[key][0].start_mark.line + 1
                self.problem(key_node, here, f"key given twice (first on line {first})")
                continue
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close \
                    else f"; expected one of {', '.join(known)}"
                self.problem(key_node, here, f"unknown key {key!r}{hint}")
                continue
            own[key] = (key_node, value_node)
        return {**{k: v for k, v in merged.items() if k in known}, **own}

    def text(self, node: Node, path: str, *, required: bool = True) -> str | None:
        """The scalar's text, trimmed; None (with a problem) when it is not a string or is
        empty and required."""
        if not isinstance(node, ScalarNode):
            self.problem(node, path, f"expected a string, got {_kind(node)}")
            return None
        if not node.tag.startswith(_CORE):
            self.problem(node, path, f"expected a plain string, got a value tagged "
                                     f"{node.tag}")
            return None
        value = "" if node.tag == _NULL else node.value.strip()
        if not value and required:
            self.problem(node, path, "expected a non-empty string, got nothing")
            return None
        return value

    def policy(self, node: Node, path: str) -> Policy | None:
        fields = self.mapping(node, path, KEYS, "a policy")
        if fields is None:
            return None
        before = len(self.problems)
        for key in REQUIRED:
            if key not in fields:
                self.problem(node, path, f"missing required key {key!r}")
        values: dict[str, str] = {}
        for key in ("id", "title", "owner", "category", "severity", "runbook", "engine",
                    "description"):
            if key in fields:
                value = self.text(fields[key][1], f"{path}.{key}",
                                  required=key in REQUIRED)
                if value is not None:
                    values[key] = value
        self._check_values(fields, values, path)
        controls = self.controls(fields["controls"][1], f"{path}.controls") \
            if "controls" in fields else None
        if len(self.problems) > before or controls is None:
            return None
        return Policy(id=values["id"], title=values["title"], owner=values["owner"],
                      category=values["category"], severity=values["severity"],
                      controls=controls, runbook=values["runbook"],
                      engine=values.get("engine", ""),
                      description=values.get("description", ""),
                      source=self.source, line=node.start_mark.line + 1)

    def _check_values(self, fields, values: dict[str, str], path: str) -> None:
        if "id" in values and not _ID.match(values["id"]):
            self.problem(fields["id"][1], f"{path}.id",
                         f"policy id {values['id']!r} holds whitespace or control "
                         "characters (or is over 256 characters); expected the id the "
                         "engine reports (policy.id)")
        if "severity" in values and values["severity"] not in SEVERITIES:
            self.problem(fields["severity"][1], f"{path}.severity",
                         f"unknown severity {values['severity']!r}; expected one of "
                         f"{', '.join(SEVERITIES)}")
        if "runbook" in values:
            message = runbook_problem(values["runbook"])
            if message:
                self.problem(fields["runbook"][1], f"{path}.runbook", message)

    def controls(self, node: Node, path: str) -> tuple[Control, ...] | None:
        if not isinstance(node, SequenceNode):
            if isinstance(node, ScalarNode) and node.tag == _NULL:
                return ()  # `controls:` with nothing: the policy maps to no control
            self.problem(node, path, "expected a list of {framework, control}, got "
                                     f"{_kind(node)}")
            return None
        out: list[Control] = []
        ok = True
        seen: dict[Control, int] = {}
        for i, item in enumerate(node.value):
            here = f"{path}[{i}]"
            fields = self.mapping(item, here, _CONTROL_KEYS, "a control {framework, control}")
            if fields is None:
                ok = False
                continue
            parts = {}
            for key in _CONTROL_KEYS:
                if key not in fields:
                    self.problem(item, here, f"missing required key {key!r}")
                else:
                    parts[key] = self.text(fields[key][1], f"{here}.{key}")
            if None in parts.values() or len(parts) < 2:
                ok = False
                continue
            control = Control(parts["framework"], parts["control"])
            if control in seen:
                self.problem(item, here, f"control {control} is listed twice (first on "
                                         f"line {seen[control]})")
                ok = False
                continue
            seen[control] = item.start_mark.line + 1
            out.append(control)
        return tuple(out) if ok else None

    def document(self, root: Node | None) -> list[Policy]:
        if root is None:
            self.problem(None, "", "the file is empty; expected a mapping with a "
                                   "'policies' list")
            return []
        fields = self.mapping(root, "", ("policies",), "a catalog")
        if fields is None:
            return []
        if "policies" not in fields:
            self.problem(root, "", "missing required key 'policies' (the list of policies)")
            return []
        node = fields["policies"][1]
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, SequenceNode):
            self.problem(node, "policies", f"expected a list of policies, got {_kind(node)}")
            return []
        return [p for i, item in enumerate(node.value)
                if (p := self.policy(item, f"policies[{i}]")) is not None]


def runbook_problem(url: str) -> str | None:
    """Why `url` cannot be a runbook link, or None when it can: an absolute http(s) URL with
    a host and no whitespace.

    >>> runbook_problem("https://wiki.example.com/runbooks/k8s#limits") is None
    True
    >>> runbook_problem("javascript:alert(1)").split("; ")[0]
    "runbook 'javascript:alert(1)' has scheme 'javascript'"
    >>> runbook_problem("docs/runbooks/x.md").split("; ")[0]
    "runbook 'docs/runbooks/x.md' is not an absolute URL"
    """
    expected = "expected an http or https URL (it is rendered as a link)"
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        return f"runbook {url!r} holds whitespace or control characters; {expected}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"runbook {url!r} is not a URL ({exc}); {expected}"
    if not parts.scheme:
        return f"runbook {url!r} is not an absolute URL; {expected}"
    if parts.scheme.lower() not in RUNBOOK_SCHEMES:
        return f"runbook {url!r} has scheme {parts.scheme!r}; {expected}"
    if not parts.hostname:
        return f"runbook {url!r} names no host; {expected}"
    return None


def parse_text(text: str, source: str = "<catalog>") -> tuple[list[Policy], list[Problem]]:
    """The valid policies of one catalog document and every problem of it, by line."""
    reader = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = " ".join(f"{exc.context or ''} {exc.problem or ''}".split())
        line = mark.line + 1 if mark is not None else 0
        return [], [Problem(source, line, "", f"not valid YAML: {detail} (one catalog "
                                              "document per file)")]
    except yaml.YAMLError as exc:
        return [], [Problem(source, 0, "", f"not valid YAML: {' '.join(str(exc).split())}")]
    policies = reader.document(root)
    return policies, sorted(reader.problems, key=lambda p: p.line)


def files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """The catalog files of files and directories (a directory: its *.yaml / *.yml, not
    recursive, by name); a missing path, or a directory without any, is a problem."""
    found, problems = [], []
    for root in map(Path, paths):
        if root.is_dir():
            inside = sorted(p for p in root.iterdir() if p.suffix in SUFFIXES and p.is_file())
            if not inside:
                problems.append(Problem(str(root), 0, "", "no catalog files (*.yaml, *.yml) "
                                                          "in this directory"))
            found += inside
        elif root.is_file():
            found.append(root)
        else:
            problems.append(Problem(str(root), 0, "", "no such file or directory"))
    return found, problems


def check_sources(documents: Iterable[tuple[str, str]]) -> Checked:
    """Every (source name, text) document together: each one's problems, and ids given
    twice across them."""
    policies: list[Policy] = []
    problems: list[Problem] = []
    sources = []
    first: dict[str, Policy] = {}
    for source, text in documents:
        sources.append(source)
        found, found_problems = parse_text(text, source)
        problems += found_problems
        for policy in found:
            if policy.id in first:
                where = first[policy.id]
                problems.append(Problem(source, policy.line, "",
                                        f"policy id {policy.id!r} is given twice: first at "
                                        f"{where.source}:{where.line}"))
                continue
            first[policy.id] = policy
            policies.append(policy)
    return Checked(tuple(policies), tuple(problems), tuple(sources))


def check_paths(paths: Iterable[str | Path]) -> Checked:
    """Read and check catalog files and directories together (what `catalog validate`
    and `catalog load` run)."""
    found, problems = files(paths)
    documents = []
    for path in found:
        try:
            documents.append((str(path), path.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            problems.append(Problem(str(path), 0, "", f"cannot read: not UTF-8 text (byte "
                                                      f"{exc.start})"))
        except OSError as exc:
            problems.append(Problem(str(path), 0, "", f"cannot read: {exc.strerror or exc}"))
    checked = check_sources(documents)
    ordered = sorted([*problems, *checked.problems], key=lambda p: (p.file, p.line))
    return Checked(checked.policies, tuple(ordered), checked.files)
