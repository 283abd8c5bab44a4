"""Redaction: each built-in's hits and near misses, users' rules, errors, and properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
import re2
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collector.errors import ConfigError
from collector.rules.cards import luhn_valid
from collector.rules.redact import BUILTIN_NAMES, RedactError, Redactor, RedactSpec

ALL = Redactor(BUILTIN_NAMES, [])
M = "[REDACTED]"


def only(name: str) -> Redactor:
    """A redactor with one built-in."""
    return Redactor([name], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc", f"Authorization: Bearer {M}"),
        ("authorization=bearer secret", f"authorization=bearer {M}"),
        ('{"Authorization": "Bearer eyJhbGciOi.x.y"}', f'{{"Authorization": "Bearer {M}"}}'),
        ("sent bearer eyJhbGciOiJIUzI1NiJ9.e30.sig to api", f"sent bearer {M} to api"),
        ("BEARER abcdefghijklmnopqrstuvwxyz", f"BEARER {M}"),
        # "Bearer" twice (a client that prefixed a token that had it): the token after both
        ("Authorization: Bearer Bearer eyJhbGciOi.x.y", f"Authorization: Bearer Bearer {M}"),
        ("AUTHORIZATION:BEARER bearer 000000007", f"AUTHORIZATION:BEARER bearer {M}"),
        ("Authorization: Bearer bearer", f"Authorization: Bearer {M}"),  # the token itself
    ],
)
def test_bearer_tokens_are_masked(text: str, expected: str) -> None:
    """The token after Bearer is masked and the header around it kept."""
    assert only("bearer").redact(text) == (expected, {"bearer": 1})


@pytest.mark.parametrize(
    "text",
    [
        "missing bearer token",
        "the bearer credentials were refused",
        "bearer abc12",  # too short to be a token outside an Authorization header
        "Authorization: Bearer [REDACTED]",
        "a forebearer 1234567890",
        "bearer X-Api-Key: k",  # a pair's key, which that pair's rule masks after
        "the bearer bearer bonds",
    ],
)
def test_bearer_near_misses_stay(text: str) -> None:
    """Words after "bearer" in prose, short strings and masked tokens are left alone."""
    assert only("bearer").redact(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api_key=abc123 next=1", f"api_key={M} next=1"),
        ("X-Api-Key: zzz", f"X-Api-Key: {M}"),
        ("GET /v1?apikey=k3y&page=2", f"GET /v1?apikey={M}&page=2"),
        ('{"stripe_api_key": "k\\"ey", "n": 1}', f'{{"stripe_api_key": "{M}", "n": 1}}'),
        ("access_token=abc.def", f"access_token={M}"),
        ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc used", f"key {M} used"),
        ("id AKIAIOSFODNN7EXAMPLE here", f"id {M} here"),
        ("token ghp_" + "a1" * 18, f"token {M}"),
        ("pat github_pat_11ABCDEFG0123456789_abcdef", f"pat {M}"),
        ("xoxb-1234567890-abcdef", M),
        ("AIza" + "Sy" + "A" * 33, M),
        ("key=sk-proj-abc123def456ghi789jkl0", f"key={M}"),
    ],
)
def test_api_keys_are_masked(text: str, expected: str) -> None:
    """API key pairs keep their key, and tokens with well-known prefixes are masked whole."""
    assert only("api_key").redact(text) == (expected, {"api_key": 1})


@pytest.mark.parametrize(
    "text",
    [
        "prompt_tokens=12 total_tokens=40",  # counts of tokens, not tokens
        "api_key_id=42",
        "deploy sk-payments-worker-deployment",  # kebab-case name, no digit
        "AKIAIOSFODNN7EXAMPL too short",
        "xAKIAIOSFODNN7EXAMPLE inside a word",
        "ghp_short",
        "monkey=banana",
    ],
)
def test_api_key_near_misses_stay(text: str) -> None:
    """Counts named like tokens, ids, names with a key's prefix and short strings stay."""
    assert only("api_key").redact(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://bob:s3cret@db:5432/x", f"postgres://bob:{M}@db:5432/x"),
        ("redis://:pw@cache:6379", f"redis://:{M}@cache:6379"),
        ("amqp://guest:p@ss@mq/", f"amqp://guest:{M}@mq/"),
        ('"url": "https://u:p:w@example.com/a?b=c"', f'"url": "https://u:{M}@example.com/a?b=c"'),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    """The password of a URL is masked; scheme, user, host and path stay."""
    assert only("url_password").redact(text) == (expected, {"url_password": 1})


@pytest.mark.parametrize(
    "text",
    [
        "http://example.com:8080/path",
        "https://user@example.com/",
        "see http://host:8080 or mail bob@example.com",
        "http://host:80/a@b",
    ],
)
def test_url_password_near_misses_stay(text: str) -> None:
    """URLs with a port, a user without password, or an @ in the path stay."""
    assert only("url_password").redact(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user=bob password=hunter2 ok", f"user=bob password={M} ok"),
        ("?passwd=x&pwd=y", f"?passwd={M}&pwd={M}"),
        ("DB_PASSWORD=x secret: abc", f"DB_PASSWORD={M} secret: {M}"),
        ('{"password": "hu\\"nter", "user": "x"}', f'{{"password": "{M}", "user": "x"}}'),
        ("{'client_secret': 'abc'}", f"{{'client_secret': '{M}'}}"),
        ('{"m": "{\\"password\\":\\"abc\\"}"}', f'{{"m": "{{\\"password\\":\\"{M}\\"}}"}}'),
        ("Server=db;Password=y;Database=z", f"Server=db;Password={M};Database=z"),
        ('password="unterminated', f"password={M}"),
        ("password: secret: x", f"password: secret: {M}"),  # secret: is the next pair's key
        ('password=secret": x', f'password=secret": "{M}"'),
        ("password=PASSWD7 =", f"password={M} ="),  # a value, though it looks like a key
    ],
)
def test_password_pairs_are_masked(text: str, expected: str) -> None:
    """The value of a password pair is masked, inside its quotes when quoted."""
    redacted, counts = only("password_pair").redact(text)
    assert redacted == expected
    assert counts == {"password_pair": expected.count(M)}


@pytest.mark.parametrize(
    "text",
    [
        "password reset requested for user 42",
        'password=""',
        "password=",
        "passwords match",
        "password=[REDACTED]",
    ],
)
def test_password_pair_near_misses_stay(text: str) -> None:
    """Prose about passwords, empty values and masked values stay."""
    assert only("password_pair").redact(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob.smith+x@example.co.uk now", f"mail {M} now"),
        ("<Alice@Example.COM>", f"<{M}>"),
        ('{"to":"a_b@mail.example.org"}', f'{{"to":"{M}"}}'),
    ],
)
def test_emails_are_masked(text: str, expected: str) -> None:
    """E-mail addresses are masked whole."""
    assert only("email").redact(text) == (expected, {"email": 1})


@pytest.mark.parametrize(
    "text",
    [
        "@mention in a chat",
        "user@localhost",
        "busybox@sha256:abc123",
        "GET /img/logo@2x.png 200",
        "npm i @scope/pkg@1.2.3",
        "a@b.c",
    ],
)
def test_email_near_misses_stay(text: str) -> None:
    """An @ without a dotted domain ending in letters, and file names with @, stay."""
    assert only("email").redact(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [
        ("card 4111111111111111 ok", f"card {M} ok", 1),
        ("card=4111 1111 1111 1111;", f"card={M};", 1),
        ("4111-1111-1111-1111", M, 1),
        ("amex 3782 822463 10005", f"amex {M}", 1),
        ("order 12 4111 1111 1111 1111", f"order 12 {M}", 1),
        ("4111111111111111 5500 0055 5555 5559", f"{M} {M}", 2),
        ("a,4111111111111111,b\n5500005555555559", f"a,{M},b\n{M}", 2),
    ],
)
def test_card_numbers_passing_luhn_are_masked(text: str, expected: str, count: int) -> None:
    """Card numbers that pass Luhn are masked, grouped or not, next to other digits or not."""
    assert only("card").redact(text) == (expected, {"card": count})


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 shipped",  # 16 digits failing Luhn
        "ts=1733140000123456789",  # epoch ns; starts with 1
        "ts=1733140000123",  # epoch ms
        "id 41111111111111111111111",  # a longer digit string
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "x4111111111111111",  # inside a word
        "2024-01-15 12:34:56.789",
        "4111 1111 1111",  # 12 digits
        '{"latency": 0.30000000000000004}',  # a float's decimals
        "Received block blk_-6952295868487656571",  # a negative id
        "call +4915112345678",  # a phone number
    ],
)
def test_card_near_misses_stay(text: str) -> None:
    """Numbers failing Luhn, timestamps, long ids and digits inside words stay."""
    assert only("card").redact(text) == (text, {})


def test_luhn() -> None:
    """The Luhn check accepts known test card numbers and rejects one digit off."""
    assert luhn_valid(b"4111111111111111")
    assert luhn_valid(b"378282246310005")
    assert not luhn_valid(b"4111111111111112")


def test_a_key_after_bearer_is_left_to_its_pair() -> None:
    """A pair glued after "Bearer" has its value masked by the pair's rule, not the bearer's."""
    assert ALL.redact("BEARER X-Api-Key: 00007") == (f"BEARER X-Api-Key: {M}", {"api_key": 1})


def test_all_builtins_together_keep_each_others_context() -> None:
    """With every built-in on, each masks its part and the text around stays readable."""
    line = (
        "login bob@example.com via https://bob:pw@auth.example.com/ "
        "password=hunter2 card=4111111111111111 Authorization: Bearer abc api_key=k"
    )
    redacted, counts = ALL.redact(line)
    assert redacted == (
        f"login {M} via https://bob:{M}@auth.example.com/ "
        f"password={M} card={M} Authorization: Bearer {M} api_key={M}"
    )
    assert counts == {
        "email": 1,
        "url_password": 1,
        "password_pair": 1,
        "card": 1,
        "bearer": 1,
        "api_key": 1,
    }


def test_a_text_without_secrets_is_returned_as_is() -> None:
    """A line with nothing to mask comes back unchanged (the same object) with no counts."""
    line = "GET /api/v1/orders/123 200 12ms user_id=42"
    redacted, counts = ALL.redact(line)
    assert redacted is line
    assert counts == {}


def test_text_that_is_not_valid_unicode_is_kept() -> None:
    """Lone surrogates around a secret survive redaction."""
    assert ALL.redact("\ud800 password=x \udfff") == (
        f"\ud800 password={M} \udfff",
        {"password_pair": 1},
    )


def test_no_rules_is_false_and_changes_nothing() -> None:
    """A redactor without rules is false and returns any text unchanged."""
    empty = Redactor([], [])
    assert not empty
    assert empty.redact("password=x") == ("password=x", {})
    assert ALL
    assert Redactor([], [RedactSpec(name="x", pattern="x")])


def test_builtins_apply_in_their_documented_order_whatever_the_order_given() -> None:
    """The order built-ins are named in does not change the result."""
    line = "https://u:p@example.com password=4111111111111111"
    forward = Redactor(BUILTIN_NAMES, []).redact(line)
    assert Redactor(reversed(BUILTIN_NAMES), []).redact(line) == forward


def test_the_public_set_matcher_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the re2 wrapper does not expose RE2's own set matcher, its public one is used."""
    search_set = re2.Set.SearchSet

    class PublicOnly:
        def __init__(self, options: object) -> None:
            self.inner = search_set(options)
            self.Add, self.Compile, self.Match = (
                self.inner.Add,
                self.inner.Compile,
                self.inner.Match,
            )

    line = "user=bob password=hunter2 to bob@example.com, nothing else"
    expected = ALL.redact(line)
    monkeypatch.setattr(re2.Set, "SearchSet", PublicOnly)
    public = Redactor(BUILTIN_NAMES, [])
    assert public.redact(line) == expected
    assert public.redact("nothing to mask") == ("nothing to mask", {})


# --- users' rules -----------------------------------------------------------------------


def test_custom_rule_masks_its_whole_match() -> None:
    """A user's pattern without a `secret` group has its whole match masked, and counted."""
    rule = RedactSpec(name="ssn", pattern=r"\b\d{3}-\d{2}-\d{4}\b", mask="<ssn>")
    assert Redactor([], [rule]).redact("ssn 123-45-6789 and 987-65-4321") == (
        "ssn <ssn> and <ssn>",
        {"ssn": 2},
    )


def test_custom_rule_masks_only_its_secret_group() -> None:
    """A user's pattern with a group named `secret` keeps the rest of its match."""
    rule = RedactSpec(name="session", pattern=r"session=(?P<secret>[0-9a-f]+)")
    assert Redactor([], [rule]).redact("session=deadbeef ok") == (f"session={M} ok", {"session": 1})


def test_custom_rule_speaks_unicode() -> None:
    """A user's pattern matches Unicode text, and the text around keeps its characters."""
    rule = RedactSpec(name="name", pattern=r"Zoë \pL+", mask="…")
    assert Redactor([], [rule]).redact("für Zoë Müller — ok") == ("für … — ok", {"name": 1})


@pytest.mark.parametrize("pattern", ["x*", "(?:abc)?", r"\b", r"\B", "^", "$", r"(?m)^$", "a|"])
def test_a_pattern_matching_the_empty_string_is_an_error(pattern: str) -> None:
    """A pattern that can match the empty string, which would mask nothing, is refused."""
    with pytest.raises(RedactError, match=r"'empty'.*matches the empty string"):
        Redactor([], [RedactSpec(name="empty", pattern=pattern)])


def test_an_empty_secret_group_masks_nothing() -> None:
    """A match whose `secret` group is empty inserts no mask and counts nothing."""
    rule = RedactSpec(name="pin", pattern=r"pin=(?P<secret>[0-9]*)")
    assert Redactor([], [rule]).redact("pin= pin=12") == (f"pin= pin={M}", {"pin": 1})


def test_custom_rules_run_after_the_builtins_in_the_order_given() -> None:
    """A user's rule sees the text the built-ins left, then the next rule sees its output."""
    first = RedactSpec(name="first", pattern=r"user=\w+", mask="user=?")
    second = RedactSpec(name="second", pattern=r"user=\?", mask="U")
    redactor = Redactor(["password_pair"], [first, second])
    assert redactor.redact("user=bob password=x") == (
        f"U password={M}",
        {"password_pair": 1, "first": 1, "second": 1},
    )


def test_a_rule_cutting_a_character_in_two_does_not_raise() -> None:
    """A pattern matching single bytes (RE2's \\C) leaves a replacement character, not an error."""
    rule = RedactSpec(name="byte", pattern=r"f\C", mask="#")  # f and the 1st byte of "é"
    assert Redactor([], [rule]).redact("caf\u00e9!") == ("ca#\ufffd!", {"byte": 1})


# --- errors -----------------------------------------------------------------------------


def test_a_backreference_is_an_error_naming_the_rule() -> None:
    """A pattern RE2 cannot run (a backreference) is a RedactError naming the rule and why."""
    rule = RedactSpec(name="twice", pattern=r"(a)\1")
    with pytest.raises(RedactError, match=r"'twice'.*not valid RE2.*backreferences") as info:
        Redactor([], [rule])
    assert str(info.value).endswith("): invalid escape sequence: \\1")
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, ValueError)


def test_lookahead_is_an_error_naming_the_rule() -> None:
    """A lookahead is refused with the rule's name."""
    with pytest.raises(RedactError, match="'ahead'"):
        Redactor([], [RedactSpec(name="ahead", pattern=r"a(?=b)")])


def test_an_unknown_builtin_is_an_error_listing_the_builtins() -> None:
    """A misspelt built-in name is refused, and the message lists the right names."""
    with pytest.raises(RedactError, match=r"'emails'.*bearer, api_key, url_password"):
        Redactor(["emails"], [])


@pytest.mark.parametrize(
    ("builtins", "names"),
    [(["email", "email"], []), ([], ["x", "x"]), (["card"], ["card"])],
)
def test_a_name_given_twice_is_an_error(builtins: list[str], names: list[str]) -> None:
    """Two rules with one name are refused, naming it."""
    custom = [RedactSpec(name=name, pattern="a") for name in names]
    with pytest.raises(RedactError, match="given twice"):
        Redactor(builtins, custom)


def test_a_custom_rule_may_take_the_name_of_a_builtin_that_is_off() -> None:
    """A user may replace a built-in by a rule of the same name when the built-in is off."""
    own = RedactSpec(name="email", pattern=r"\w+@corp\.example")
    assert Redactor(["card"], [own]).redact("to x@corp.example") == (f"to {M}", {"email": 1})


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Bad-Name", "pattern": "a"},
        {"name": "x" * 33, "pattern": "a"},
        {"name": "x", "pattern": ""},
        {"name": "x", "pattern": "a", "mask": ""},
        {"name": "x", "pattern": "a", "colour": "red"},
    ],
)
def test_spec_refuses_bad_fields(fields: dict[str, str]) -> None:
    """Names outside [a-z0-9_]{1,32}, empty patterns or masks, and unknown keys are refused."""
    with pytest.raises(ValidationError):
        RedactSpec.model_validate(fields)


def test_spec_is_frozen() -> None:
    """A rule cannot change after it was made."""
    spec = RedactSpec(name="x", pattern="a")
    with pytest.raises(ValidationError):
        spec.mask = "y"  # type: ignore[misc]


def test_json_text_stays_json_when_values_are_masked() -> None:
    """Masking string and number values of JSON text keeps it JSON; null and booleans stay."""
    record = {"password": 'a"b\\c', "pin_secret": 1234, "api_key": None, "to": "x@example.com"}
    redacted, counts = ALL.redact(json.dumps(record))
    assert json.loads(redacted) == {"password": M, "pin_secret": M, "api_key": None, "to": M}
    assert counts == {"password_pair": 2, "email": 1}


def test_json_inside_a_json_string_stays_json() -> None:
    """A number masked in JSON text escaped inside a JSON string is quoted the escaped way."""
    inner = json.dumps({"password": 1234})
    redacted, _ = ALL.redact(json.dumps({"msg": inner}))
    assert json.loads(json.loads(redacted)["msg"]) == {"password": M}


# --- properties -------------------------------------------------------------------------

# Text that often looks like a secret or its context: fragments glued together.
FRAGMENTS = st.sampled_from(
    [
        " ", "\t", "\n", "=", ":", '"', "'", "\\", "&", ",", ";", "[", "]", "{", "}", "@", ".",
        "-", "/", "://", "_", "%", "+", "a", "Z", "0", "4", "9", "1111", "4111", "é", "\ud800",
        "password", "pwd", "secret", "api_key", "token", "Bearer ", "Authorization: ",
        "https://", "user:", "example.com", "sk_live_", "AKIA", "ghp_", "sk-", "[REDACTED]",
        "4111111111111111", "4111 1111 1111 1111", "bob@example.com", "logo@2x.png",
    ]
)  # fmt: skip
TEXTS = st.one_of(st.text(), st.lists(FRAGMENTS | st.text(max_size=3)).map("".join))
SECRET_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
PUNCTUATION = st.sampled_from("!#$%*+-./:=?@[]^_|~")
URL_PUNCTUATION = st.sampled_from("!$%*+-.:=@[]^_|~")  # / ? # end a URL's user info


def words(size: int, chars: st.SearchStrategy[str] = SECRET_CHARS) -> st.SearchStrategy[str]:
    """Secrets of at least `size` characters, with a digit so that they look like tokens."""
    return st.text(chars, min_size=size, max_size=40).map(lambda text: text + "7")


def card_numbers() -> st.SearchStrategy[str]:
    """Numbers passing Luhn, 13 to 19 digits starting with 2-6, maybe grouped by 4."""

    def complete(body: str) -> str:
        for check in "0123456789":
            if luhn_valid((body + check).encode()):
                return body + check
        raise AssertionError("some check digit always completes a Luhn number")

    digits = st.text("0123456789", min_size=11, max_size=17)
    numbers = st.builds(
        lambda first, rest: complete(first + rest), st.sampled_from("23456"), digits
    )
    spaced = st.sampled_from(["", " ", "-"])
    return st.builds(
        lambda n, sep: sep.join(n[i : i + 4] for i in range(0, len(n), 4)), numbers, spaced
    )


# Each: (the text holding the secret, the secret), for every built-in.
EMBEDDED = st.one_of(
    words(1).map(lambda s: (f"Authorization: Bearer {s}", s)),
    words(8).map(lambda s: (f"bearer {s}", s)),
    st.tuples(
        st.sampled_from(["api_key=", "X-Api-Key: ", "apikey:", "access_token="]), words(4)
    ).map(lambda kv: (kv[0] + kv[1], kv[1])),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16).map(
        lambda s: ("AKIA" + s, "AKIA" + s)
    ),
    words(36).map(lambda s: ("ghp_" + s, "ghp_" + s)),
    words(10).map(lambda s: ("sk_live_" + s, "sk_live_" + s)),
    st.tuples(words(1), words(3, SECRET_CHARS | URL_PUNCTUATION)).map(
        lambda up: (f"https://{up[0]}:{up[1]}@host.example/", up[1])
    ),
    st.tuples(
        st.sampled_from(["password=", "PWD: ", "db_passwd=", "secret="]),
        words(3, SECRET_CHARS | PUNCTUATION),
    ).map(lambda kv: (kv[0] + kv[1], kv[1])),
    st.text(min_size=4).map(
        lambda s: (json.dumps({"password": s + "7x"}), json.dumps(s + "7x")[1:-1])
    ),
    st.tuples(words(1), st.sampled_from(["example.com", "mail.example.org", "x.io"])).map(
        lambda ld: (f"{ld[0]}@{ld[1]}", f"{ld[0]}@{ld[1]}")
    ),
    card_numbers().map(lambda n: (n, n)),
)


@given(TEXTS)
@settings(max_examples=500)
@example("A://0@0.AA:0@")  # an address masked where a URL's user would be
def test_redact_never_raises_and_is_idempotent(text: str) -> None:
    """Any text redacts without an error, and redacting the result again changes nothing."""
    once, _ = ALL.redact(text)
    assert ALL.redact(once) == (once, {})


@given(TEXTS, TEXTS, EMBEDDED)
@settings(max_examples=500)
def test_an_embedded_secret_never_survives(
    before: str, after: str, embedded: tuple[str, str]
) -> None:
    """A generated secret, with its context, anywhere in arbitrary text, is gone after redaction."""
    context, secret = embedded
    text = f"{before} {context} {after}"
    assume(text.count(secret) == 1 and M not in secret)
    redacted, counts = ALL.redact(text)
    assert secret not in redacted
    assert counts


@given(TEXTS)
@settings(max_examples=500)
def test_counts_equal_the_masks_put_in(text: str) -> None:
    """The counts add up to the number of masks the text gained."""
    assume(M not in text)
    redacted, counts = ALL.redact(text)
    assert redacted.count(M) == sum(counts.values())
    assert all(count > 0 for count in counts.values())


@given(TEXTS, st.sampled_from([r"\d+", r"[a-z]+@", r"(?i)secret", r"x(?P<secret>y*)z", r".+"]))
def test_custom_rules_never_raise_and_count_their_masks(text: str, pattern: str) -> None:
    """A user's rule with its own mask never raises and counts each mask it puts in."""
    assume("<m>" not in text)
    redactor = Redactor(BUILTIN_NAMES, [RedactSpec(name="own", pattern=pattern, mask="<m>")])
    redacted, counts = redactor.redact(text)
    assert redacted.count("<m>") == counts.get("own", 0)


class _Counting:
    """An RE2 pattern that counts the bytes its searches read (to a match's end, or to
    the end of the text when none)."""

    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.read = 0

    @property
    def groupindex(self) -> Any:
        return self.pattern.groupindex

    def search(self, text: bytes, pos: int) -> Any:
        match = self.pattern.search(text, pos)
        self.read += (match.end() if match is not None else len(text)) - pos
        return match


@pytest.mark.parametrize(("name", "key"), [("password_pair", b"password="), ("api_key", b"token=")])
def test_keys_glued_one_after_another_are_read_once(name: str, key: bytes) -> None:
    """`password=` 8,000 times took 17 s: each key's bare value ran to the end of the line
    and was searched again from the next key, reading the line once per key. The keys a
    search would keep are now skipped in one pass: the searches read the line a few times
    at most, and the last key's value is masked as before."""
    from collector.rules.known_secrets import BUILTINS
    from collector.rules.spans import Rule

    builtin = BUILTINS[name]
    counting = _Counting(re2.compile(builtin.pattern))
    rule = Rule(name, builtin.pattern, counting, builtin.masker, builtin.rescan)
    line = b"start " + key * 2000 + b"secret end"
    masked, count = rule.apply(line)
    assert (masked, count) == (b"start " + key * 2000 + b"[REDACTED] end", 1)
    assert counting.read <= 4 * len(line)


@pytest.mark.parametrize(
    ("pattern", "line", "once"),
    [
        ("[A-Z]{4,}", "token ABCDEFG end", "token [REDACTED] end"),
        (r"\w{8,}", "hello abcdefghij end", "hello [REDACTED] end"),
        ("E", "E", "[REDACTED]"),
        ("[A-Z]{4,}", "ABCD [REDACTED] EFGH", "[REDACTED] [REDACTED] [REDACTED]"),
    ],
)
def test_a_pattern_that_matches_the_mask_leaves_masks_alone(
    pattern: str, line: str, once: str
) -> None:
    """A user's pattern that finds REDACTED in the mask made [[REDACTED]] of a line
    redacted twice (the line, then its parsed message), and worse for one letter; a
    match inside a mask is left alone, so redacting again changes nothing."""
    redactor = Redactor([], [RedactSpec(name="w", pattern=pattern)])
    text, counts = redactor.redact(line)
    assert text == once
    assert counts == {"w": once.count("[REDACTED]") - line.count("[REDACTED]")}
    assert redactor.redact(text) == (text, {})
