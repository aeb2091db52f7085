"""Triage: analysts' verdicts on denies, warns and open violations — the source of the
false-positive rate M4 — with no Streamlit in it, so the dashboard, the CLI and the tests
share one implementation.

- a *subject* is a deny / warn decision or an open violation (`triage.model`); subjects that
  agree on policy, rule, resource kind and name, and reason share a `Fingerprint`
  (`triage.fingerprint`, the one definition);
- the *queue* (`queue`; its page and totals apart: `queue_groups`, `queue_totals`;
  `group_subjects`) holds the subjects of a time range without a current verdict, grouped by
  fingerprint;
- *verdicts* (`label`, `label_group`, `label_matching`, `undo`) are appended to a history
  (`history`); the latest entry per subject counts (`current_verdicts`), and is what M4 reads
  (`triage_verdicts`, kept by a view of the history);
- *sticky rules* (`make_sticky`, `disable_rule`, `rules`, `apply_rules`) give a fingerprint's
  later subjects a verdict automatically, counted apart in M4 (`M4_propagated`);
- `fp_rate_by_policy`: the FP rate per policy per day, with its trend;
- *exceptions as code* (`false_positive_groups`, `propose`, `propose_all`): a Kyverno
  PolicyException, a Gatekeeper excludedNamespaces patch or an OPA data patch per
  false-positive group.

Writes take an `Actor` (name and role) and refuse, before writing, any role but analyst,
sre or admin (`TriagePermissionError`); every entry records the actor's name. All SQL is in
`triage.store`.
"""

from triage.access import LABELLING_ROLES, ROLES, Actor, TriagePermissionError
from triage.fingerprint import Fingerprint, fingerprint_id
from triage.fp_rate import FpRates, fp_rate_by_policy
from triage.model import (
    ActionResult,
    Filters,
    HistoryEntry,
    QueueGroup,
    QueuePage,
    Rule,
    Subject,
    SubjectRef,
    Verdict,
    VerdictKind,
)
from triage.policy_exceptions import (
    FalsePositiveGroup,
    Proposal,
    UnsupportedEngine,
    false_positive_groups,
    propose,
    propose_all,
)
from triage.queue import find_subjects, group_subjects, queue, queue_groups, queue_totals
from triage.sticky import apply_rules, disable_rule, make_sticky, rules
from triage.verdicts import (
    current_verdicts,
    history,
    label,
    label_group,
    label_matching,
    undo,
)

__all__ = [
    "LABELLING_ROLES", "ROLES", "ActionResult", "Actor", "FalsePositiveGroup", "Filters",
    "Fingerprint", "FpRates", "HistoryEntry", "Proposal", "QueueGroup", "QueuePage", "Rule",
    "Subject", "SubjectRef", "TriagePermissionError", "UnsupportedEngine", "Verdict",
    "VerdictKind", "apply_rules", "current_verdicts", "disable_rule", "false_positive_groups",
    "find_subjects", "fingerprint_id", "fp_rate_by_policy", "group_subjects", "history",
    "label", "label_group", "label_matching", "make_sticky", "propose", "propose_all",
    "queue", "queue_groups", "queue_totals", "rules", "undo",
]
