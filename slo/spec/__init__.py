"""SLOs as code: strict parsing of OpenSLO v1 `SLO` documents whose SLI is a PolicyScope one.

A file is a plain OpenSLO v1 document (DESIGN §6), so other OpenSLO tools can read it. All that
is PolicyScope's lives in the `spec` of the metric sources of type `policyscope` (OpenSLO leaves
a source's spec to its type):

- numerator source (`good`, or `bad` for SLIs whose numerator counts bad events, see
  `BAD_NUMERATOR_SLIS`): `sli` (a ratio SLI id) and `where` ({dimension: value}).
- `total` source: the same `sli` and `where`, plus the SLO's settings, written once:
  `by` (evaluate per value of a dimension), `alerting` (window pairs, `minEvents`, `for`) and
  `budgetPolicies` (actions at a share of the period budget consumed).

Parsing is lazy: every problem is reported, one line each, naming the file and the key path
(`x.yaml: spec.objectives[0].target: must be between 0 and 1 exclusive, got 1.2`). Structural
problems come first; the cross-field checks run once the structure is sound.

Modules: `fields` (value types and the SLI/dimension constants), `model` (the document as
pydantic models, `SLO`), `checks` (cross-field checks), `load` (YAML files to `SLO`s).
"""

from core.units import format_duration
from slo.spec.fields import (
    ALERT_WINDOWS,
    BAD_NUMERATOR_SLIS,
    DIMENSIONS,
    MULTI_DIMENSION_SLIS,
    SLI_DIMENSIONS,
    SpecError,
)
from slo.spec.load import check_paths, load_dir, load_file, parse, validate_paths
from slo.spec.model import SLO, events

__all__ = ["ALERT_WINDOWS", "BAD_NUMERATOR_SLIS", "DIMENSIONS", "MULTI_DIMENSION_SLIS",
           "SLI_DIMENSIONS", "SLO", "SpecError", "check_paths", "events", "format_duration",
           "load_dir", "load_file", "parse", "validate_paths"]
