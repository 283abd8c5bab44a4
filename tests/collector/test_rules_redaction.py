"""Redaction wired into the collector: every place a secret could land holds the mask."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.batch import Decoded, decode
from collector.config import load_config
from collector.enrich import Context
from collector.errors import ConfigError
from collector.rules.config import ParseRule
from collector.rules.engine import Engine, ParsingRules
from collector.rules.masking import RedactConfig
from collector.rules.redact import BUILTIN_NAMES
from tests.collector.wirelines import body, log, source

NOON = 1746100800 * 10**9
ALL = RedactConfig(builtins=list(BUILTIN_NAMES))


def _ctx(redact: RedactConfig | None = ALL, *rules: dict[str, Any]) -> Context:
    parsed = [ParseRule.model_validate(r) for r in rules]
    return Context(parsing=ParsingRules(Engine(parsed, "1d", redact)))


def _decode(ctx: Context, *messages: str, keep_original: bool = False) -> Decoded:
    lines = [log(m, NOON + i, i) for i, m in enumerate(messages)]
    return decode(body(source(), *lines), ctx, "2025-05-01T12:00:00.000Z", keep_original)


def _everything(decoded: Decoded) -> str:
    """All a batch would send: every document and the copies kept for dead letters."""
    return "\n".join(orjson.dumps(d.body).decode() + (d.original or "") for d in decoded.docs)


def test_message_original_and_dead_letter_copy_hold_the_mask() -> None:
    """A password in a plain line is masked in message, event.original and Doc.original."""
    decoded = _decode(_ctx(), "\x1b[31mlogin failed password=Hunter2Zq\x1b[0m", keep_original=True)
    doc = decoded.docs[0]
    assert doc.body["message"] == "login failed password=[REDACTED]"
    assert "[REDACTED]" in doc.body["event"]["original"]
    assert "Hunter2Zq" not in _everything(decoded)
    assert decoded.rules.redactions == {"password_pair": 1}


def test_json_escapes_do_not_hide_a_secret_from_redaction() -> None:
    """An e-mail written with \\u0040 in JSON is masked once decoded into attributes."""
    decoded = _decode(_ctx(), '{"msg": "signup", "user": "ann\\u0040example.com"}')
    doc = decoded.docs[0].body
    assert doc["attributes"]["user"] == "[REDACTED]"
    assert "ann@example.com" not in _everything(decoded)
    assert decoded.rules.redactions == {"email": 1}


def test_url_passwords_in_access_logs_are_masked_in_http_fields() -> None:
    """A password in a request URL is masked in message and url.original alike."""
    url = "http://u:S3cretZq@h.example/"
    line = f'10.0.0.1 - - [01/May/2025:12:00:00 +0000] "GET {url} HTTP/1.1" 200 5'
    decoded = _decode(_ctx(), line)
    assert decoded.docs[0].body["url"]["original"] == "http://u:[REDACTED]@h.example/"
    assert "S3cretZq" not in _everything(decoded)


def test_a_rules_own_redaction_masks_its_keys_before_they_are_typed() -> None:
    """A key masked by the rule's redaction is never indexed as a number: text, tagged."""
    rule = {
        "name": "orders",
        "regex": r"order (?P<order>\d+) card (?P<card_no>\S+)",
        "fields": {"order": "long", "card_no": "long"},
        "redact": {"custom": [{"name": "card_digits", "pattern": r"card (?P<secret>\d+)"}]},
    }
    decoded = _decode(_ctx(None, rule), "order 17 card 5555000011112222")
    doc = decoded.docs[0]
    assert doc.body["fields"] == {"order": 17}
    assert doc.body["attributes"]["card_no"] == "[REDACTED]"
    assert doc.body["tags"] == ["rule_failure"]
    assert doc.body["message"] == "order 17 card [REDACTED]"
    assert "5555000011112222" not in _everything(decoded)
    assert decoded.rules.redactions["card_digits"] >= 1


def test_keys_the_masks_left_alone_stay_when_the_masked_line_no_longer_fits() -> None:
    """A pattern that took the secret as digits no longer fits the masked line: the key
    holding the secret is left out, the others (their text still in the masked line)
    stay in the document, typed, and the line's own time is still taken."""
    rule = {
        "name": "payments",
        "regex": r"^\[(?P<time>\S+)\] user=(?P<user>\w+) card=(?P<card>\d+) amount=(?P<amount>\d+)",
        "fields": {"amount": "long", "card": "long"},
        "timestamp": {"field": "time"},
        "redact": {"builtins": ["card"]},
    }
    line = "[2025-05-01T11:59:00Z] user=bob card=4111111111111111 amount=12"
    decoded = _decode(_ctx(None, rule), line)
    doc = decoded.docs[0].body
    assert doc["message"] == "[2025-05-01T11:59:00Z] user=bob card=[REDACTED] amount=12"
    assert doc["fields"] == {"amount": 12}
    assert doc["attributes"] == {"time": "2025-05-01T11:59:00Z", "user": "bob"}
    assert doc["@timestamp"] == "2025-05-01T11:59:00.000000000Z"
    assert doc["logpipe"]["rule_failure"] == [
        "the pattern no longer fits once redacted: card left out (masked in the line)"
    ]
    assert doc["tags"] == ["rule_failure"]
    assert "4111111111111111" not in _everything(decoded)
    assert decoded.rules.redactions == {"card": 1}


def test_no_redaction_and_no_rules_leave_the_engine_false() -> None:
    """An empty redact section costs nothing: the engine is false, the fast path stays."""
    assert not Engine([], "1d", RedactConfig())
    assert Engine([], "1d", ALL)


@pytest.mark.parametrize(
    ("redact", "says"),
    [
        ({"builtins": ["passwords"]}, "unknown built-in redaction 'passwords'"),
        ({"custom": [{"name": "x", "pattern": "(?<=a)b"}]}, "redaction rule 'x'"),
        ({"custom": [{"name": "Bad Name", "pattern": "b"}]}, "redact.custom.0.name"),
    ],
)
def test_redaction_that_cannot_work_is_a_config_error(
    tmp_path: Path, redact: dict[str, Any], says: str
) -> None:
    """Unknown built-ins and patterns RE2 refuses stop the load, naming the rule."""
    path = tmp_path / "collector.yaml"
    path.write_text(json.dumps({"redact": redact}))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert says in str(caught.value)


SECRET = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=10, max_size=16).map(
    lambda s: "Zq" + s
)
NOISE = st.text(alphabet="abcdefghij .,:-/", max_size=30)


@st.composite
def secret_lines(draw: st.DrawFn) -> tuple[str, str]:
    """(a line, the secret it carries), in the places secrets are found in logs."""
    secret = draw(SECRET)
    user = secret.lower()[:12]
    kind = draw(st.sampled_from(["pair", "bearer", "url", "email", "json", "json_email", "kv"]))
    before, after = draw(NOISE), draw(NOISE)
    shapes = {
        "pair": (f"{before} password={secret} {after}", secret),
        "bearer": (f"{before} Authorization: Bearer {secret} {after}", secret),
        "url": (f"{before} GET https://svc:{secret}@db.example/x {after}", secret),
        "email": (f"{before} mail {user}@example.com {after}", f"{user}@example.com"),
        "json": (json.dumps({"msg": before, "db_password": secret, "n": 1}), secret),
        "json_email": (
            json.dumps({"msg": after, "to": f"{user}@example.com"}).replace("@", "\\u0040"),
            f"{user}@example.com",
        ),
        "kv": (f"level=info msg={before!r} api_key={secret} took=5", secret),
    }
    return shapes[kind]


RULE = {
    "name": "catch_all",
    "regex": r"(?P<first>\S+)(?: (?P<second>\S+))?",
    "fields": {"first": "keyword", "second": "keyword"},
}


@settings(max_examples=200, deadline=None)
@given(st.lists(secret_lines(), min_size=1, max_size=4), st.booleans(), st.booleans())
def test_a_redacted_secret_never_appears_anywhere_in_the_document(
    lines: list[tuple[str, str]], keep_original: bool, with_rule: bool
) -> None:
    """With the built-ins on, no secret is in any document, event.original included."""
    ctx = _ctx(ALL, RULE) if with_rule else _ctx(ALL)
    decoded = _decode(ctx, *(text for text, _ in lines), keep_original=keep_original)
    assert len(decoded.docs) == len(lines)
    sent = _everything(decoded)
    for _, secret in lines:
        assert secret not in sent


def test_a_wire_line_that_does_not_read_is_masked_in_the_dead_letters() -> None:
    """An off-schema wire line carrying a password reaches the dead letters masked."""
    bad = b'{"kind": "log", "src": 0, "message": "password=Hunter2Zq"}'
    decoded = decode(body(source(), bad), _ctx(), "2025-05-01T12:00:00.000Z")
    [dead] = decoded.dead_letters
    assert "Hunter2Zq" not in orjson.dumps(dead.body).decode()
    assert decoded.errors
