"""Reading SLO files: YAML with duplicate keys refused, pydantic errors turned into one line
per problem naming the key path, directories, and the CI check."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from slo.spec.checks import check
from slo.spec.fields import SpecError, _SETTINGS, _UNSUPPORTED
from slo.spec.model import (
    AlertWindow,
    Alerting,
    BudgetPolicy,
    Calendar,
    Indicator,
    IndicatorMetadata,
    IndicatorSpec,
    Metadata,
    Numerator,
    Objective,
    RatioMetric,
    SLO,
    SloSpec,
    SourceFilter,
    SourceSettings,
    TimeWindow,
    _NumeratorSource,
)


# -- loading -----------------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _known_keys() -> set[str]:
    models = [Metadata, SourceFilter, AlertWindow, Alerting, BudgetPolicy, SourceSettings,
              _NumeratorSource, Numerator, RatioMetric, IndicatorMetadata, IndicatorSpec,
              Indicator, Calendar, TimeWindow, Objective, SloSpec, SLO]
    return {f.alias or n for m in models for n, f in m.model_fields.items()}


_EXACTLY_ONE = ("timeWindow", "objectives")  # OpenSLO lists; PolicyScope evaluates one of each


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _messages(err: ValidationError) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        path, kind, value = _path(e["loc"]), e["type"], e.get("input")
        key = str(e["loc"][-1])
        if kind == "extra_forbidden":
            hint = _UNSUPPORTED.get(key)
            close = difflib.get_close_matches(key, _known_keys(), n=1, cutoff=0.75)
            message = f"unknown key {key!r}" + (
                f" (valid OpenSLO, not supported: {hint})" if hint
                else " (SLO settings by, alerting and budgetPolicies go in the total metric "
                     "source's spec)" if key in _SETTINGS
                else f" (did you mean {close[0]!r}?)" if close else "")
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "literal_error":
            message = f"must be {e['ctx']['expected']}, got {value!r}"
        elif kind == "policyscope":
            message = f"{e['msg']}, got {value!r}"
        elif kind in ("too_short", "too_long"):
            size = len(value) if isinstance(value, (list, tuple)) else e["ctx"]["actual_length"]
            if kind == "too_short" and size >= e["ctx"]["min_length"]:
                continue  # pydantic counts only the items that validated: not a real problem
            message = (f"must hold exactly one item, got {size}" if key in _EXACTLY_ONE
                       else f"must hold at least {e['ctx'].get('min_length', 1)} item(s), got "
                            f"{size}")
        elif kind == "greater_than_equal":
            message = f"must be at least {e['ctx']['ge']}, got {value!r}"
        elif kind in ("int_type", "int_parsing", "int_from_float"):
            message = f"must be a whole number, got {value!r}"
        else:
            message = f"{e['msg'][0].lower()}{e['msg'][1:]}, got {value!r}"
        out.append((path, message))
    return out


def parse(document: Any, source: str | Path = "<document>") -> SLO:
    """Validate one parsed YAML document. Raises SpecError with every problem found."""
    where = str(source)
    if not isinstance(document, dict):
        raise SpecError([f"{where}: must be a mapping (an OpenSLO document), got "
                         f"{type(document).__name__}"])
    try:
        slo = SLO.model_validate(document)
    except ValidationError as exc:
        raise SpecError([f"{where}: {p}: {m}" for p, m in _messages(exc)]) from exc
    problems = check(slo)
    if problems:
        raise SpecError([f"{where}: {p}: {m}" for p, m in problems])
    if isinstance(source, Path):
        slo._source = source
    return slo


def load_file(path: str | Path) -> SLO:
    """Read and validate one SLO file (one YAML document). Raises SpecError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise SpecError([f"{path}: not valid YAML (one SLO document per file): {detail}"]) \
            from exc
    return parse(document, path)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def _load_all(paths: Iterable[str | Path]) -> tuple[list[SLO], list[str]]:
    slos, errors, names = [], [], {}
    for root in map(Path, paths):
        if not root.exists():
            errors.append(f"{root}: no such file or directory")
            continue
        for path in _files(root):
            try:
                slo = load_file(path)
            except SpecError as exc:
                errors.extend(exc.errors)
                continue
            if slo.name in names:
                errors.append(f"{path}: metadata.name: {slo.name!r} is already the name of "
                              f"the SLO in {names[slo.name]}")
                continue
            names[slo.name] = path
            slos.append(slo)
    return slos, errors


def load_dir(path: str | Path) -> list[SLO]:
    """Every *.yaml / *.yml SLO in a directory (not recursive), sorted by file name. Raises
    SpecError listing every problem of every file, duplicate names included."""
    slos, errors = _load_all([path])
    if errors:
        raise SpecError(errors)
    return slos


def check_paths(paths: Iterable[str | Path]) -> tuple[list[SLO], list[str], list[str]]:
    """(valid SLOs, error lines, warning lines) for files and directories together; names
    must be unique across all of them."""
    slos, errors = _load_all(paths)
    return slos, errors, [w for slo in slos for w in slo.warnings()]


def validate_paths(paths: Iterable[str | Path]) -> list[str]:
    """Error lines for `policyscope slo validate PATH...`; empty when every file is valid."""
    return check_paths(paths)[1]
