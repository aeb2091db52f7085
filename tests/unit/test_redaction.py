"""collector/redaction.py: secrets out of keys and values, and the row builder using it on
every string column and every extra attribute value before anything reaches the spool."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import redaction
from collector.config import CollectorConfig
from collector.normalize import Normalizer
from collector.normalize_pool import NormalizerPool
from collector.redaction import (
    DEFAULT_VALUE_PATTERNS,
    REDACTED,
    Redactor,
    check_value_patterns,
    required_literals,
)
from collector.rows import MAX_EXTRA_VALUE_CHARS, RowBuilder, SourceContext
from policyscope.config import ConfigError, load_config
from schemas.events import EVENT_KINDS, TABLES, ValueType
from tests.builders.otlp import decision, logs_request

pytestmark = pytest.mark.unit

AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "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"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
PEM_BODY = "\nMIIEowIBAAKCAQEAx3Yq0pZkz9Xr+lqf/2n8RzA0Q7K1\nbWlzc2luZyBrZXk=\n"
DECISION = {"policy.id": "k8s.require-non-root", "policy.outcome": "deny"}


def redact(text: str) -> str:
    return Redactor().value(text)


# -- value patterns: what is replaced, and only that ----------------------------------------

@pytest.mark.parametrize("text,expected", [
    pytest.param(f"key {AWS} in the pod env", f"key {REDACTED} in the pod env",
                 id="an AWS long-term access key id is redacted in prose"),
    pytest.param("ASIAY34FZKBOKMUTVV7A", REDACTED,
                 id="an AWS temporary (ASIA) access key id is redacted"),
    pytest.param(f"token {GITHUB}", f"token {REDACTED}", id="a GitHub classic token is redacted"),
    pytest.param("gho_16C7e42F292c6912E7710c838347Ae178B4a", REDACTED,
                 id="a GitHub OAuth token is redacted"),
    pytest.param("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM",
                 REDACTED, id="a GitHub fine-grained token is redacted"),
    pytest.param("clone with glpat-Xy9_abcdefghij0123456789 now", f"clone with {REDACTED} now",
                 id="a GitLab personal access token is redacted"),
    pytest.param("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", REDACTED,
                 id="a Slack bot token is redacted"),
    pytest.param(f"jwt={JWT};", f"jwt={REDACTED};", id="a JWT is redacted"),
    pytest.param(f"-----BEGIN RSA PRIVATE KEY-----{PEM_BODY}-----END RSA PRIVATE KEY----- ok",
                 f"-----BEGIN RSA PRIVATE KEY-----{REDACTED}-----END RSA PRIVATE KEY----- ok",
                 id="a PEM private key keeps its armour lines and loses its body"),
    pytest.param("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA",
                 f"-----BEGIN OPENSSH PRIVATE KEY-----{REDACTED}",
                 id="a PEM private key cut short loses everything after BEGIN"),
    pytest.param("dial postgres://admin:pw123@db:5432/app failed",
                 f"dial postgres://admin:{REDACTED}@db:5432/app failed",
                 id="a URL password is redacted, scheme user and host kept"),
    pytest.param("redis://:s3cr3t@cache:6379", f"redis://:{REDACTED}@cache:6379",
                 id="a URL password with no user is redacted"),
    pytest.param("https://x-access-token:abc123@github.com/o/r",
                 f"https://x-access-token:{REDACTED}@github.com/o/r",
                 id="a URL password after a user named token is redacted once, host kept"),
    pytest.param("postgres://admin:p@ss@db/x", f"postgres://admin:{REDACTED}@db/x",
                 id="a URL password holding an @ is redacted whole"),
    pytest.param("Authorization: Bearer abc.def-ghi_123", f"Authorization: Bearer {REDACTED}",
                 id="a Bearer token is redacted, the scheme kept"),
    pytest.param("authorization: basic dXNlcjpwYXNzd29yZA==",
                 f"authorization: basic {REDACTED}", id="a Basic credential is redacted"),
    pytest.param("password=hunter2&user=bob", f"password={REDACTED}&user=bob",
                 id="a password= pair in a query string is redacted, the rest kept"),
    pytest.param('{"password": "p a s s", "user": "x"}',
                 f'{{"password": "{REDACTED}", "user": "x"}}',
                 id="a JSON password with spaces is redacted whole"),
    pytest.param('{"api_key":"a\\"b"}', f'{{"api_key":"{REDACTED}"}}',
                 id="a JSON value with an escaped quote is redacted whole"),
    pytest.param('{\\"client_secret\\":\\"hunter2\\"}', f'{{\\"client_secret\\":\\"{REDACTED}\\"}}',
                 id="a secret in JSON escaped inside a string is redacted"),
    pytest.param("DB_PASSWORD='s3cr3t x'", f"DB_PASSWORD='{REDACTED}'",
                 id="a quoted environment variable password is redacted"),
    pytest.param("api_key: 12345", f"api_key: {REDACTED}", id="an api_key: pair is redacted"),
    pytest.param("PWD=/home/app", f"PWD={REDACTED}", id="pwd counts as a password word"),
    pytest.param("token: Bearer abcdef123456", f"token: {REDACTED} {REDACTED}",
                 id="a token pair whose value is a Bearer credential leaves neither part"),
])
def test_value_patterns_redact_only_the_secret_part(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    pytest.param("AKIAIOSFODNN7EXAMPL", id="an AKIA id one character short is kept"),
    pytest.param("AIDAJQABLZS4A3QDU576Q", id="an IAM user id (AIDA, not a credential) is kept"),
    pytest.param("ghp_short", id="ghp_ with too few characters is kept"),
    pytest.param("eyJhbGciOiJIUzI1NiJ9", id="a lone base64 JSON segment is not a JWT"),
    pytest.param("https://example.com:8443/path?x=1&y=a@b",
                 id="a URL without credentials is kept"),
    pytest.param("ssh://git@github.com:22/org/repo", id="a URL with a user and no password is kept"),
    pytest.param("sha256:9f86d081884c7d659a2feaa0c55ad015a2bea3f4f1b5d0b8f0e7f3e3c5b6a7c8",
                 id="a sha256 hex digest is kept"),
    pytest.param("the token expired before the password reset",
                 id="the words token and password in prose are kept"),
    pytest.param("token_count: 5, tokens=3", id="a key that only starts with token is kept"),
    pytest.param("secretName: db-creds", id="a key that only starts with secret is kept"),
    pytest.param("basic settings apply to the bearer of this badge",
                 id="basic and bearer followed by plain words are kept"),
    pytest.param("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                 id="a certificate (public) is kept"),
    pytest.param("container runs as root; set runAsNonRoot: true",
                 id="an ordinary policy reason is kept"),
])
def test_near_misses_are_kept_verbatim(text):
    assert redact(text) == text


# -- key patterns ------------------------------------------------------------------------------

@pytest.mark.parametrize("key,secret", [
    pytest.param("aws.access_key_id", True, id="access_key is a secret key"),
    pytest.param("AWS_SECRET_ACCESS_KEY", True, id="secret_key in capitals is a secret key"),
    pytest.param("auth.jwt", True, id="jwt is a secret key"),
    pytest.param("sentry.dsn", True, id="dsn is a secret key"),
    pytest.param("db.connection_string", True, id="connection_string is a secret key"),
    pytest.param("connectionString", True, id="connectionString is a secret key"),
    pytest.param("ssh_key", True, id="ssh is a secret key"),
    pytest.param("tls.private", True, id="private is a secret key"),
    pytest.param("session", True, id="session is a secret key"),
    pytest.param("http.session_id", True, id="session_id is a secret key"),
    pytest.param("user.session", True, id="a key ending in session is a secret key"),
    pytest.param("PHPSESSID", True, id="PHPSESSID is a secret key"),
    pytest.param("session_count", False, id="session_count counts sessions: kept"),
    pytest.param("session.duration", False, id="session.duration is a property: kept"),
    pytest.param("sessions", False, id="sessions is kept"),
    pytest.param("http.route", False, id="http.route is kept"),
    pytest.param("k8s.pod.name", False, id="k8s.pod.name is kept"),
])
def test_key_patterns(key, secret):
    assert Redactor().key(key) is secret


# -- the prefilter never changes a result ------------------------------------------------------

PIECES = ["AKIA", "ASIA", "IOSFODNN7EXAMPLE", "ghp_", "github_pat_", "glpat-", "xoxb-", "eyJ",
          "hbGciOi", ".", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
          "://", "admin", ":", "@", "/", "=", "password", "PassWord", "token", "api_key",
          "Bearer ", "basic ", "dXNlcjpwYXNz", "0123456789", "abcdefghij", "ABCDEFGHIJ", '"',
          "'", "\\", " ", "\n", "é", "K"]


def _every_pattern_everywhere(text: str) -> str:
    for rule in Redactor()._rules:
        text = rule.pattern.sub(rule.replace, text)
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
def test_the_prefilter_and_cache_give_what_running_every_pattern_gives(text):
    redactor = Redactor()
    assert redactor.value(text) == _every_pattern_everywhere(text)
    assert redactor.value(text) == _every_pattern_everywhere(text)  # from the cache
    # a column of many values, long enough together for the joined-text path, cache cold
    assert Redactor().column([text] * 3 + [f"value-{i}-" * 8 for i in range(40)])[0] == \
        _every_pattern_everywhere(text)


@pytest.mark.parametrize("pattern", [
    r"(?i)cust-[0-9]{4}", r"(?:foo|ba[rz])+\d", r"x(?i:AbC)y", r"[A-C]{2}-(?P<secret>\w+)",
    r"(?s)start.*end", r"(?=q)qu+x", r"(?:\bzz|yy)\s*=\s*\S+", r"ab?c",
])
def test_required_literals_hold_for_every_match_of_a_custom_pattern(pattern):
    assert required_literals(pattern), f"no literal found for {pattern!r}"
    redactor = Redactor(value_patterns=[pattern])
    (rule,) = redactor._rules

    @settings(max_examples=150, deadline=None)
    @given(st.from_regex(pattern))
    def check(text):
        lowered = text.lower() if text.isascii() else None
        assert rule.possible(text, lowered), text
        assert redactor._opened(text) == {0}, text
    check()


def test_every_default_value_pattern_has_required_literals_for_the_prefilter():
    # Without one, every value of every record would run that pattern: the hot path's cost.
    for pattern in DEFAULT_VALUE_PATTERNS:
        assert required_literals(pattern), pattern
    assert not Redactor()._always


def test_a_pattern_without_literals_still_redacts():
    redactor = Redactor(value_patterns=[r"\d{12}"])
    assert required_literals(r"\d{12}") == []
    assert redactor.value("account 123456789012") == f"account {REDACTED}"


# -- columns and the cache ---------------------------------------------------------------------

def test_a_column_without_secrets_is_returned_as_is():
    column = [f"payments-api-{i:05x}" for i in range(50)]
    assert Redactor().column(column) is column


def test_a_column_is_redacted_value_by_value_in_place_of_each_occurrence():
    column = [f"svc-{i}" for i in range(20)] + [f"key {AWS}", "plain", f"key {AWS}"]
    out = Redactor().column(column)
    assert out[:20] == column[:20]
    assert out[20:] == [f"key {REDACTED}", "plain", f"key {REDACTED}"]


def test_a_long_column_is_redacted_in_every_group_of_values_that_holds_a_secret():
    column = [f"container svc-{i} runs as root; runAsNonRoot: true" for i in range(300)]
    column[5] += f" key {AWS}"
    column[250] += " password=hunter2"
    out = Redactor().column(column)
    assert [i for i, (a, b) in enumerate(zip(column, out)) if a != b] == [5, 250]
    assert out[5].endswith(f" key {REDACTED}") and out[250].endswith(f"password={REDACTED}")


def test_the_value_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(redaction, "CACHE_SIZE", 4)
    redactor = Redactor()
    for i in range(10):
        redactor.value(f"value-{i}")
    assert len(redactor.cache) <= 4
    assert redactor.value(f"id {AWS}") == f"id {REDACTED}"


# -- configuration -----------------------------------------------------------------------------

def test_value_redaction_is_on_by_default():
    assert CollectorConfig().redact_values == list(DEFAULT_VALUE_PATTERNS)
    assert load_config(env={}).collector.redact_values == list(DEFAULT_VALUE_PATTERNS)


@pytest.mark.parametrize("patterns,fragment", [
    pytest.param(["(unclosed"], "is not a regex", id="a value pattern that is not a regex fails"),
    pytest.param(["x*"], "matches the empty string",
                 id="a value pattern matching the empty string fails"),
])
def test_bad_value_patterns_are_rejected_naming_them(patterns, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(env={}, overrides={"redact_values": patterns})
    assert fragment in str(err.value) and "redact_values" in str(err.value)
    with pytest.raises(ValueError, match=re.escape(patterns[0])):
        check_value_patterns(patterns)


def test_an_empty_list_turns_value_redaction_off_but_not_key_redaction():
    config = load_config(env={}, overrides={"redact_values": []}).collector
    normalizer = Normalizer(redact_attributes=config.redact_attributes,
                            redact_values=config.redact_values)
    row = normalizer.logs(logs_request(decision(
        None, **{"policy.reason": f"key {AWS}", "db.password": "hunter2"}))
    ).tables["policy_decisions"].to_pylist()[0]
    assert row["reason"] == f"key {AWS}"
    assert dict(row["attributes"]) == {"db.password": REDACTED}


def test_the_normalizer_pool_passes_value_patterns_on():
    pool = NormalizerPool(workers=0, max_extra_attributes=8, redact_attributes=[],
                          redact_values=[r"CANARY-\d+"], retry_after=1.0)
    body = logs_request(decision(None, **{"policy.reason": "x CANARY-42 y", "note": AWS})
                        ).SerializeToString()
    batch = pool.submit("logs", body, "application/x-protobuf").result()
    row = batch.tables["policy_decisions"].to_pylist()[0]
    assert row["reason"] == f"x {REDACTED} y"
    assert dict(row["attributes"]) == {"note": AWS}  # only the configured patterns apply


# -- the row builder: every string column, every extra value -----------------------------------

def _text_attributes(table) -> list[tuple[str, str]]:
    return [(c.name, c.attributes[0]) for c in table.columns
            if c.value_type is ValueType.STRING and c.attributes]


@pytest.mark.parametrize("kind", [
    pytest.param("policy.decision", id="every string column of policy_decisions is redacted"),
    pytest.param("drift.detected", id="every string column of policy_events is redacted"),
])
@pytest.mark.parametrize("where", ["record", "context"])
def test_every_string_column_is_redacted(kind, where):
    table = EVENT_KINDS[kind].table
    columns = _text_attributes(table)
    assert len(columns) >= 14  # the test covers the columns, whatever they become
    attrs = {key: f"{name}: {AWS}" for name, key in columns}
    record = {**DECISION} if kind == "policy.decision" else {}
    base = {}
    (record if where == "record" else base).update(attrs)
    if where == "context" and kind == "policy.decision":
        record = {"policy.outcome": "deny"}
    out = RowBuilder().batch()
    out.add(SourceContext(base), kind, record, event_id=f"evt-{AWS}")
    (row,) = out.finish().tables[table.name].to_pylist()
    for name, _ in columns:
        assert row[name] == f"{name}: {REDACTED}", name
    assert row["event_id"] == f"evt-{REDACTED}"
    assert AWS not in repr(row)


def test_every_string_column_of_every_table_is_looked_at():
    for table in TABLES:
        expected = {c.name for c in table.columns if c.value_type is ValueType.STRING
                    and (c.attributes or c.name == "event_id")}
        assert set(RowBuilder().text_columns[table.name]) == expected


def test_extra_attribute_values_are_redacted_plain_and_as_json():
    out = RowBuilder().batch()
    out.add(SourceContext(), "policy.decision", {
        **DECISION, "http.request.header": f"Authorization: Bearer {JWT}",
        "db": {"url": "mysql://root:toor@db/x", "user": "root"},
        "tags": ["ok", f"{GITHUB}"]})
    (row,) = out.finish().tables["policy_decisions"].to_pylist()
    extra = dict(row["attributes"])
    assert extra == {"http.request.header": f"Authorization: Bearer {REDACTED}",
                     "db": f'{{"url": "mysql://root:{REDACTED}@db/x", "user": "root"}}',
                     "tags": f'["ok", "{REDACTED}"]'}


def test_a_secret_across_the_length_cut_is_redacted_before_the_cut():
    text = "x" * (MAX_EXTRA_VALUE_CHARS - 6) + AWS
    out = RowBuilder().batch()
    out.add(SourceContext(), "policy.decision", {**DECISION, "note": text})
    (row,) = out.finish().tables["policy_decisions"].to_pylist()
    stored = dict(row["attributes"])["note"]
    assert len(stored) == MAX_EXTRA_VALUE_CHARS and "AKIA" not in stored
    assert stored.endswith(REDACTED[:6])
