"""Secrets out of what the collector stores: attribute keys that name a secret, and secrets
inside any value (a key in a reason, a password in a URL, a JWT in an attribute).

`Redactor` is the one way both go. `key(name)` says whether an attribute's key matches a key
pattern (`collector.redact_attributes`, default `schemas.events.DEFAULT_REDACT_PATTERNS`):
its value is then stored as `[REDACTED]`. `value(text)` replaces, in any text, what a value
pattern (`collector.redact_values`, default `DEFAULT_VALUE_PATTERNS` below) matches by
`[REDACTED]`: only the groups whose names start with `secret` when the pattern has such
groups (`postgres://admin:[REDACTED]@db`, `Bearer [REDACTED]`, `password=[REDACTED]`), else the
whole match. The row builder (collector/rows.py) runs every string column, the event ids and
every extra attribute value through it before the rows reach the spool, so nothing secret
reaches disk.

The normalizer is the ingest hot path, and nearly every value holds no secret, so redaction
does little for most. Each pattern comes with the literals every match of it must contain
(`required_literals`, derived from the parsed regex: `://` and `@` for URL passwords, `:` or
`=` and one of `pass`, `token`, `secret`, ... for password pairs) and runs only on text that
holds them, found by plain substring tests. `column(values)` takes a batch's column: each
distinct value once, and when they are many, first all of them joined, so that a column with
no trigger of any pattern costs one pass; `value(text)` keeps a bounded cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from typing import Iterable

from schemas.events import DEFAULT_REDACT_PATTERNS

REDACTED = "[REDACTED]"

# Value patterns, applied in this order (token formats before the generic pairs, so that
# `token: Bearer abc...` loses the token, not only the word Bearer). Groups named secret*
# mark the part replaced; the rest of a match is kept to keep the text useful.
DEFAULT_VALUE_PATTERNS: tuple[str, ...] = (
    # PEM private keys (RSA, EC, OPENSSH, ENCRYPTED, PGP ... BLOCK); the body, up to END or
    # to the end of a text cut short.
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?P<secret>[\s\S]+?)"
    r"(?=-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    # AWS access key ids: long-term AKIA, temporary ASIA, and the other credential prefixes
    r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])",
    # GitHub tokens: personal, OAuth, user-to-server, server-to-server, refresh; fine-grained
    r"gh[pousr]_[A-Za-z0-9]{20,}",
    r"github_pat_[A-Za-z0-9_]{20,}",
    # GitLab personal access tokens
    r"glpat-[A-Za-z0-9_-]{20,}",
    # Slack tokens: bot, user, app, refresh, ...
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    # JWTs (a JSON header, base64url: eyJ...) of two or three segments
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*)?",
    # credentials in URLs: scheme://user:password@host keeps scheme, user and host
    r"://[^\s/?#@:]*:(?P<secret>[^\s/]+)@",
    # HTTP Authorization values; the token must look like one (a digit, a symbol or an inner
    # capital), so "basic settings" in prose stays
    r"\b(?i:bearer|basic)\s+(?P<secret>(?=[A-Za-z]*[0-9._~+/=-]|[A-Za-z][a-z]*[A-Z])"
    r"[A-Za-z0-9._~+/=-]{8,})",
    # password=..., "api_key": "...", token: ..., DB_PASSWORD='...': a key ending in a secret
    # word, then : or =, then the value (JSON-quoted, escaped-JSON-quoted, quoted or bare) unless
    # an earlier pattern redacted it already (x-access-token:[REDACTED]@host stays whole)
    r"(?i:pass(?:word|wd|phrase)|pwd|secret|token|api[_.-]?key|access[_.-]?key"
    r"|private[_.-]?key|credentials?)\\?[\"']?\s*[:=]\s*(?!\[REDACTED\])"
    r"(?:\"(?P<secret>(?:[^\"\\]|\\.)*)\"|\\\"(?P<secret_escaped>.*?)\\\""
    r"|'(?P<secret_quoted>[^']*)'|(?P<secret_bare>[^\s\"',;&\\]+))",
)

_FEW_STRINGS = 12  # clauses tested on a whole column at once have at most this many strings
_GROUP = 32  # values of a column tested together before one by one
CACHE_SIZE = 32_768  # distinct values remembered (then forgotten at once and relearned)
CACHED_CHARS = 256  # longer values are not cached (rarely repeated, costly to keep)


def check_key_patterns(patterns: Iterable[str]) -> list[str]:
    """The key patterns, or ValueError naming the first that is not a regex."""
    patterns = list(patterns)
    for pattern in patterns:
        _compile(pattern)
    return patterns


def check_value_patterns(patterns: Iterable[str]) -> list[str]:
    """The value patterns, or ValueError naming the first that is not a regex or matches
    the empty string (it would insert [REDACTED] between every two characters)."""
    patterns = list(patterns)
    for pattern in patterns:
        if _compile(pattern).search("") is not None:
            raise ValueError(f"{pattern!r} matches the empty string; expected a pattern that "
                             "matches only secrets")
    return patterns


def _compile(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regex: {exc}") from None


class Redactor:
    """Key and value redaction with the patterns given once. Thread-safe: its only mutable
    state is two bounded caches (key -> secret?, value -> redacted value). An empty
    `value_patterns` turns value redaction off; an empty `key_patterns` key redaction."""

    def __init__(self, key_patterns: Iterable[str] = DEFAULT_REDACT_PATTERNS,
                 value_patterns: Iterable[str] = DEFAULT_VALUE_PATTERNS):
        self.key_patterns = tuple(check_key_patterns(key_patterns))
        self.value_patterns = tuple(check_value_patterns(value_patterns))
        self._keys = [re.compile(p) for p in self.key_patterns]
        self._secret_keys: dict[str, bool] = {}
        self._rules = [_Rule(p) for p in self.value_patterns]
        self.redacts_values = bool(self._rules)
        self.cache: dict[str, str] = {}  # value -> redacted value, bounded by CACHE_SIZE
        # The gate: each rule's cheapest clause; a text holding none of their strings matches
        # no rule, and a text holding some can match only the rules those strings open. A
        # string holding another gate string adds nothing (the shorter one opens its rules).
        clauses = {i: rule.clauses[0] for i, rule in enumerate(self._rules) if rule.clauses}
        self._always = tuple(i for i, rule in enumerate(self._rules) if not rule.clauses)
        folded = _minimal(s for c in clauses.values() if c.folded for s in c.strings)
        plain = [s for s in _minimal(s for c in clauses.values() if not c.folded
                                     for s in c.strings)
                 if not any(f in s.lower() for f in folded)]

        def opens(gate: str, gate_folded: bool) -> frozenset[int]:
            return frozenset(i for i, c in clauses.items() for s in c.strings
                             if gate in (s.lower() if gate_folded else s)
                             and (gate_folded or not c.folded))

        self._gate_plain = tuple((g, _probe(g), opens(g, False)) for g in plain)
        self._gate_folded = tuple((g, _probe(g), opens(g, True)) for g in folded)
        self._folded_rules = frozenset().union(*(r for _, _, r in self._gate_folded))

    def key(self, key: str) -> bool:
        """Does an attribute with this key hold a secret (its value is stored as [REDACTED])?"""
        secret = self._secret_keys.get(key)
        if secret is None:
            secret = any(pattern.search(key) for pattern in self._keys)
            if len(self._secret_keys) >= CACHE_SIZE:
                self._secret_keys.clear()
            self._secret_keys[key] = secret
        return secret

    def value(self, text: str) -> str:
        """`text` with every secret a value pattern finds replaced by [REDACTED] (the same
        object when there is none)."""
        return self._lookup(text, None) if self._rules else text

    def column(self, values: list[str]) -> list[str]:
        """`values` (a column of a batch) with every value redacted: the same list when no
        value holds a secret."""
        changed = self.changes(set(values))
        return [changed.get(v, v) for v in values] if changed else values

    def changes(self, distinct: set[str]) -> dict[str, str]:
        """{text: redacted text} for the texts of `distinct` that hold a secret. Each is
        looked at once; when they are many, all of them joined first show which patterns
        could match in any (most columns of most batches: none, for the cost of one pass),
        then groups of them joined which could in the group."""
        if not self._rules:
            return {}
        if len(distinct) <= 8:
            return self._changes(distinct, None)
        joined = "\x00".join(distinct)
        opened = self._opened(joined)
        live = self._possible(joined, opened) if opened else opened
        if not live or len(distinct) <= 2 * _GROUP:
            return self._changes(distinct, live) if live else {}
        texts = list(distinct)
        changed: dict[str, str] = {}
        for start in range(0, len(texts), _GROUP):
            group = texts[start:start + _GROUP]
            group_live = self._possible("\x00".join(group), live)
            if group_live:
                changed.update(self._changes(group, group_live))
        return changed

    def _changes(self, texts: Iterable[str], live: set[int] | None) -> dict[str, str]:
        changed = {}
        for text in texts:
            out = self._lookup(text, live)
            if out != text:
                changed[text] = out
        return changed

    def _lookup(self, text: str, live: set[int] | None) -> str:
        """`text` redacted, from the cache if it was seen (the result never depends on
        `live`, see `_redact`)."""
        out = self.cache.get(text)
        if out is None:
            out = self._redact(text, live)
            if len(text) <= CACHED_CHARS:
                if len(self.cache) >= CACHE_SIZE:
                    self.cache.clear()
                self.cache[text] = out
        return out

    def _redact(self, text: str, live: set[int] | None = None) -> str:
        """`text` through the rules that could match it (of `live`, if given), in order.
        A rule left out could not have matched: the result is the same as with all."""
        opened = self._opened(text)
        if live is not None:
            opened &= live
        if not opened:
            return text
        lowered = text.lower() if text.isascii() else None
        for i in sorted(opened):
            rule = self._rules[i]
            if rule.possible(text, lowered):
                redacted = rule.pattern.sub(rule.replace, text)
                if redacted != text:
                    text = redacted
                    lowered = text.lower() if lowered is not None else None
        return text

    def _possible(self, text: str, opened: set[int]) -> set[int]:
        """The rules of `opened` that could match in `text` (values joined): those whose
        clauses of a few strings it holds (longer ones cost more than they save there)."""
        lowered = text.lower() if text.isascii() else None
        return {i for i in opened if self._rules[i].possible(text, lowered, _FEW_STRINGS)}

    def _opened(self, text: str) -> set[int]:
        """The rules the gate opens for `text`: a rule left out matches nowhere in it. In a
        long text (values joined), a gate string is looked for only where its rarest
        character is (one character is found many times faster than a string)."""
        opened = set(self._always)
        long = len(text) > 512
        for gate, probe, rules in self._gate_plain:
            if (not long or probe in text) and gate in text:
                opened |= rules
        if self._gate_folded:
            if text.isascii():
                lowered = text.lower()
                for gate, probe, rules in self._gate_folded:
                    if (not long or probe in lowered) and gate in lowered:
                        opened |= rules
            else:  # the folded strings are ASCII, compared on lower-cased ASCII only
                opened |= self._folded_rules
        return opened


@dataclass(frozen=True)
class Clause:
    """The text of every match holds at least one of `strings` (when `folded`: lower-case
    ASCII strings, found in the lower-cased text)."""

    strings: frozenset[str]
    folded: bool = False


class _Rule:
    """One value pattern: its regex, its required literals (cheapest clause first) and how a
    match is replaced."""

    def __init__(self, pattern: str):
        self.pattern = re.compile(pattern)
        self.clauses = required_literals(pattern)
        self._checks = tuple((tuple(sorted(c.strings, key=len)), c.folded)
                             for c in self.clauses)
        self._secrets = sorted(index for name, index in self.pattern.groupindex.items()
                               if name.startswith("secret"))

    def possible(self, text: str, lowered: str | None = None,
                 max_strings: int | None = None) -> bool:
        """Does `text` hold every clause (of at most `max_strings` strings, if given)?
        `lowered` is text.lower(), or None for non-ASCII text (then folded clauses hold)."""
        for strings, folded in self._checks:
            if max_strings is not None and len(strings) > max_strings:
                break  # cheapest first: the rest are longer still
            if folded:
                if lowered is None:
                    continue
                haystack = lowered
            else:
                haystack = text
            for s in strings:
                if s in haystack:
                    break
            else:
                return False
        return True

    def replace(self, match: re.Match) -> str:
        start, end = match.span()
        if start == end:
            return ""
        if not self._secrets:
            return REDACTED
        spans = sorted(match.span(g) for g in self._secrets if match.start(g) < match.end(g))
        parts, position = [], start
        for s, e in spans:
            if s < position:
                continue  # nested in a group already replaced
            parts += [match.string[position:s], REDACTED]
            position = e
        parts.append(match.string[position:end])
        return "".join(parts)


# -- required literals: what any match of a regex must contain -------------------------------
#
# From the parsed regex (the standard library's own parser, `re._parser`), as RE2's prefilter
# does: each node is either *exact* (it matches one of a small set of strings) or not, and
# carries clauses (sets of strings one of which every match of it holds). A sequence multiplies
# adjacent exact nodes into longer strings; a branch unites its alternatives' best clauses; a
# repeat that may match nothing and any construct not understood give nothing, which is always
# sound: the regex then simply runs on more text. Case-insensitive letters become lower-case
# ASCII strings found in the lower-cased text (non-ASCII literals give nothing).

_MAX_SET = 64  # largest set of strings an exact node or a product may hold
_MAX_CHARS = 16  # largest character class taken as a set of strings


@dataclass(frozen=True)
class _Info:
    exact: Clause | None  # the node matches exactly one of these strings
    clauses: tuple[Clause, ...] = ()


_NOTHING = _Info(None)
_EMPTY = _Info(Clause(frozenset({""})))


def required_literals(pattern: str) -> list[Clause]:
    """Clauses every match of `pattern` satisfies, the cheapest to test first; [] when
    nothing can be said (the pattern then runs on every text)."""
    try:
        from re import _constants as sre, _parser

        parsed = _parser.parse(pattern)
        info = _sequence(parsed, bool(parsed.state.flags & sre.SRE_FLAG_IGNORECASE), sre)
    except Exception:  # noqa: BLE001 - an internal module that may change: say nothing
        return []
    clauses = list(info.clauses) + ([info.exact] if info.exact else [])
    found: dict[Clause, None] = {}
    for clause in clauses:
        clause = Clause(frozenset(_minimal(clause.strings)), clause.folded)
        for c in (clause, _common(clause)):
            if c is not None and "" not in c.strings:
                found[c] = None
    # a clause implied by one at most as costly to test is redundant
    return sorted((d for d in found if not any(
        c != d and _cost(c) <= _cost(d) and _implies(c, d) for c in found)), key=_cost)


def _implies(c: Clause, d: Clause) -> bool:
    """Does every text holding `c` hold `d`?"""
    return c.folded == d.folded and all(any(t in s for t in d.strings) for s in c.strings)


def _cost(clause: Clause) -> tuple:
    """Cheapest first: few strings to look for, none a lone letter or digit (found nearly
    everywhere), long strings before short."""
    shortest = min(len(s) for s in clause.strings)
    weak = shortest < 2 and any(s.isalnum() and not s.isupper() for s in clause.strings)
    return (weak, len(clause.strings), -shortest, sorted(clause.strings))


def _common(clause: Clause) -> Clause | None:
    """The longest substring all strings of a clause share, as a clause of its own."""
    if len(clause.strings) < 2:
        return None
    first, *rest = sorted(clause.strings, key=len)
    for size in range(len(first), 0, -1):
        for i in range(len(first) - size + 1):
            part = first[i:i + size]
            if all(part in s for s in rest):
                return Clause(frozenset({part}), clause.folded)
    return None


# characters by how often they appear in names and prose, most often first; any other
# (capitals, most punctuation) counts as rarer than all of these
_COMMON_CHARS = " e-t.aoinsrhl/dcu0123456789mfpgwybvkxjqz"


def _probe(string: str) -> str:
    """The character of `string` least likely to be found in text."""
    return max(string, key=lambda c: _COMMON_CHARS.find(c) if c in _COMMON_CHARS else 99)


def _minimal(strings: Iterable[str]) -> tuple[str, ...]:
    """The strings that hold no other of them (holding any of the rest implies one of
    these), shortest first."""
    kept: list[str] = []
    for s in sorted(set(strings), key=lambda s: (len(s), s)):
        if not any(k in s for k in kept):
            kept.append(s)
    return tuple(kept)


def _join(a: Clause, b: Clause) -> Clause | None:
    folded = a.folded or b.folded
    strings = {x + y for x, y in product(a.strings, b.strings)}
    if len(strings) > _MAX_SET:
        return None
    return Clause(frozenset(s.lower() for s in strings) if folded else frozenset(strings),
                  folded)


def _union(clauses: list[Clause]) -> Clause | None:
    folded = any(c.folded for c in clauses)
    strings = {s.lower() if folded else s for c in clauses for s in c.strings}
    return Clause(frozenset(strings), folded) if len(strings) <= _MAX_SET else None


def _best(info: _Info) -> Clause | None:
    """The cheapest clause of a node, its strings' common substring of 4 or more characters
    included (a branch unites these: `pass(word|wd)|access[_.-]?key` gives pass, access
    rather than six strings; `api` of `api[_.-]?key` would be in every `payments-api`)."""
    options = list(info.clauses) + ([info.exact] if info.exact else [])
    options += [c for c in map(_common, options)
                if c is not None and min(map(len, c.strings)) >= 4]
    options = [c for c in options if "" not in c.strings]
    return min(options, key=_cost) if options else None


def _sequence(items, ignorecase: bool, sre) -> _Info:
    acc: Clause | None = Clause(frozenset({""}))
    clauses: list[Clause] = []
    whole = True  # every item exact and the product never overflowed
    for op, av in items:
        info = _node(op, av, ignorecase, sre)
        if info.exact is not None:
            joined = _join(acc, info.exact)
            if joined is None:
                clauses.append(acc)
                whole = False
                joined = info.exact
            acc = joined
        else:
            whole = False
            clauses.append(acc)
            acc = Clause(frozenset({""}))
        clauses.extend(info.clauses)
    clauses.append(acc)
    useful = tuple(c for c in clauses if "" not in c.strings)
    return _Info(acc if whole else None, useful)


def _char(code: int, ignorecase: bool) -> Clause | None:
    char = chr(code)
    if ignorecase and char.isalpha():
        if not char.isascii():
            return None
        return Clause(frozenset({char.lower()}), True)
    return Clause(frozenset({char}))


def _node(op, av, ignorecase: bool, sre) -> _Info:
    if op is sre.LITERAL:
        clause = _char(av, ignorecase)
        return _Info(clause) if clause else _NOTHING
    if op is sre.IN:
        chars: list[Clause] = []
        for item_op, item in av:
            if item_op is sre.LITERAL:
                codes = [item]
            elif item_op is sre.RANGE and item[1] - item[0] < _MAX_CHARS:
                codes = list(range(item[0], item[1] + 1))
            else:
                return _NOTHING  # negated, categories, wide ranges
            for code in codes:
                clause = _char(code, ignorecase)
                if clause is None:
                    return _NOTHING
                chars.append(clause)
        united = _union(chars) if len(chars) <= _MAX_CHARS else None
        return _Info(united) if united else _NOTHING
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return _EMPTY  # zero-width
    if op is sre.SUBPATTERN:
        _group, add, remove, sub = av
        flag = sre.SRE_FLAG_IGNORECASE
        return _sequence(sub, (ignorecase or bool(add & flag)) and not remove & flag, sre)
    if op is sre.ATOMIC_GROUP:
        return _sequence(av, ignorecase, sre)
    if op is sre.BRANCH:
        infos = [_sequence(alt, ignorecase, sre) for alt in av[1]]
        exact = None
        if all(i.exact is not None for i in infos):
            exact = _union([i.exact for i in infos])
        best = [_best(i) for i in infos]
        clauses = ()
        if all(b is not None for b in best):
            united = _union(best)
            clauses = (united,) if united else ()
        return _Info(exact, clauses)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, sub = av
        info = _sequence(sub, ignorecase, sre)
        if low == 0:
            if high == 1 and info.exact is not None:
                return _Info(_union([info.exact, Clause(frozenset({""}))]))
            return _NOTHING
        if low == high == 1:
            return info
        clauses = info.clauses + ((info.exact,) if info.exact else ())
        return _Info(None, clauses)
    return _NOTHING
