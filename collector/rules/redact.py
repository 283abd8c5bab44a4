"""Redaction: secrets and personal data in a text replaced by a mask, counted per rule. Pure.

A :class:`Redactor` holds the built-ins it was asked for and the user's own rules
(:class:`RedactSpec`). Every pattern is RE2 (the ``google-re2`` package): matching takes
time linear in the text, whatever the pattern, so no rule and no line can stall the
collector. A mask keeps the text around the secret (``password=[REDACTED]``).

The built-ins, in the order they are applied (:data:`BUILTIN_NAMES` lists the names);
each masks with ``[REDACTED]``:

``card``
    Card numbers: 13 to 19 digits, whole digit groups optionally separated by one space
    or dash each (``4111 1111 1111 1111``, ``4111-1111-1111-1111``,
    ``4111111111111111``), starting with 2 to 6 (the payment networks' ranges: Visa,
    Mastercard, Amex, Discover, JCB, UnionPay...), not inside a word or a longer digit
    string, nor right after ``.``, ``-`` or ``+`` (decimals of a float, negative ids,
    phone numbers), and masked only when they pass the Luhn check. Within a longer run of
    groups (``order 12 4111 1111 1111 1111``) each card number is found and masked. A
    16-digit order id failing Luhn stays, and so do epoch timestamps in s, ms, us or ns
    (they start with 1).
``bearer``
    The token after ``Bearer`` (any case) followed by spaces: ``Authorization: Bearer
    <token>`` (``Authorization`` and at most 6 other signs before ``Bearer``, as in
    ``"Authorization": "Bearer ..."``) always; a ``bearer <token>``
    elsewhere only when the token looks like one: 8 or more characters with a non-letter,
    or 20 or more (so "bearer token" or "bearer credentials" in a sentence stays);
    ``Bearer Bearer <token>`` (a client that prefixed a token that had the word) masks
    the token after both. The
    token ends at whitespace, a quote, ``\\``, ``<>,;()[]{}``; one that is a pair's key
    glued to its ``:`` or ``=`` (``Bearer X-Api-Key: k``) is left to that pair.
``api_key``
    The value of a pair whose key ends in ``api_key``, ``api-key``, ``apikey``,
    ``api.key`` or ``token`` (any case, with any prefix: ``x-api-key``, ``X-Api-Key``,
    ``access_token``, ``auth_token``), written as described for pairs below; and whole
    tokens with a well-known prefix: Stripe ``sk_live_``/``sk_test_``/``rk_live_``/
    ``rk_test_`` + 10 or more letters or digits, AWS access key ids ``AKIA``/``ASIA`` +
    16 capitals or digits, GitHub ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` + 36 or
    more and ``github_pat_`` + 22 or more, GitLab ``glpat-`` + 20 or more, Slack
    ``xoxb-``/``xoxa-``/``xoxp-``/``xoxo-``/``xoxs-``/``xoxr-`` + 10 or more, Google
    ``AIza`` + 35, and ``sk-`` + 20 or more letters, digits, ``_`` or ``-`` with at
    least one digit (OpenAI, Anthropic). A prefix counts only at the start of a word.
``url_password``
    The password of a URL's user info: ``scheme://user:PASSWORD@host`` becomes
    ``scheme://user:[REDACTED]@host``; the user may be empty (``redis://:pw@host``) and
    holds no whitespace, quote, ``<>``, ``[]``, ``:``, ``/``, ``?``, ``#`` or ``@``; the
    password runs to the last ``@`` before whitespace, a quote, ``<>``, ``/``, ``?`` or
    ``#``.
``password_pair``
    The value of a pair whose key contains ``password``, ``passwd``, ``pwd`` or
    ``secret`` (any case, with any prefix or suffix: ``DB_PASSWORD``,
    ``client_secret``, ``secret_key``).
``email``
    E-mail addresses, masked whole: ``local@domain.tld`` where the local part is letters,
    digits and ``._%+-``, and the domain has at least one dot and ends in 2 to 63 letters.
    An ``@`` without a dotted domain after it (``@mention``, ``user@localhost``,
    ``image@sha256:...``) stays, and so do file names such as ``logo@2x.png``.

Pairs (``api_key``, ``password_pair``) are a key, maybe a closing quote, ``=`` or ``:``
with spaces or tabs around, then the value: ``key=value`` and ``key: value`` as in
logfmt, query strings, headers and YAML, ``"key": "value"`` in JSON text (also with the
quotes escaped: JSON inside a JSON string), ``'key': 'value'``. A quoted value is masked
inside its quotes (``"password": "[REDACTED]"``), a bare one up to whitespace, a quote,
``\\``, ``&``, ``,``, ``;``, ``<``, ``>``, ``)`` or ``}``; after a quoted key, the mask of a
bare value gets the key's quotes, so JSON text stays JSON (``"pin_secret": 1234`` becomes
``"pin_secret": "[REDACTED]"``), and ``null``, ``true`` and ``false`` stay. A bare value
that is a pair's key glued to its ``:`` or ``=`` (``password: secret: x``) is left to
that pair; followed by a space (``password=secret =``) it is masked.

Each rule is applied to the text the previous ones left: the built-ins in the order
above, then the user's rules in the order given. A user's rule masks its whole match,
or only its group named ``secret`` when it has one (``session=(?P<secret>[0-9a-f]+)``).
A match or group that is empty, or is already the mask, is left as it is, and masks
already inside a part to mask stay, each piece between them masked on its own, and a
match that lies inside a mask (``REDACTED`` for a pattern like ``[A-Z]{4,}``) is left
alone: so redacting twice gives what redacting once gave, and the counts are the masks
the text gained.

Cost: a text with nothing to redact is encoded to UTF-8 once and searched once, by one
RE2 set of every rule's pattern (a few candidates that a built-in then refuses, such as
``logo@2x.png``, cost a search by that rule); each rule that masks something costs a
search of its own and one more pass of the set. A :class:`Redactor` without rules is
false and returns its text as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import re2
from pydantic import BaseModel, ConfigDict, Field

from collector.errors import ConfigError
from collector.rules.known_secrets import BUILTINS
from collector.rules.regex import RegexRefused, compile_re2, re2_reason
from collector.rules.spans import CompiledPattern, Rule, masked_group, masked_span

BUILTIN_NAMES: tuple[str, ...] = (
    "bearer",
    "api_key",
    "url_password",
    "password_pair",
    "email",
    "card",
)
DEFAULT_MASK = "[REDACTED]"
# The indices of the rules whose pattern matches somewhere in a text (none: empty or None).
_FindRules = Callable[[bytes], Sequence[int] | None]
_EMPTY_PROBES = (b"", b" ", b"aa a", b"a\n\na")
# RE2's memory budget for one rule and for the set of all rules (its default is 8 MiB).
_MAX_MEM = 64 << 20


class RedactError(ConfigError, ValueError):
    """A redaction rule that cannot be used; the message names the rule."""


class RedactSpec(BaseModel):
    """One redaction rule of the user's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9_]{1,32}$",
        description="the rule's name in counts and errors: 1 to 32 of a-z, 0-9 and _",
    )
    pattern: str = Field(
        min_length=1,
        description="an RE2 regular expression; only its group named `secret` is masked, "
        "if it has one, else the whole match",
    )
    mask: str = Field(
        DEFAULT_MASK,
        min_length=1,
        description="what replaces each match (never empty: a reader sees where text was masked)",
    )


class Redactor:
    """Built-in and user redaction rules, applied to texts."""

    def __init__(self, builtins: Iterable[str], custom: Iterable[RedactSpec]) -> None:
        rules = [*_builtin_rules(builtins), *(_custom_rule(spec) for spec in custom)]
        _check_unique(rule.name for rule in rules)
        self._rules = tuple(rules)
        self._find = _rule_finder(self._rules) if rules else None

    def __bool__(self) -> bool:
        return bool(self._rules)

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        """`text` with every rule's matches masked, and the masks put in per rule name."""
        if self._find is None:
            return text, {}
        data = text.encode("utf-8", "surrogatepass")
        hits = self._find(data)
        if not hits:
            return text, {}
        masked, counts = self._masked(data, hits, self._find)
        return (_decoded(masked) if counts else text), counts

    def _masked(
        self, data: bytes, hits: Sequence[int], find: _FindRules
    ) -> tuple[bytes, dict[str, int]]:
        """`data` through each rule the set found in it, and the masks each rule put in."""
        counts: dict[str, int] = {}
        for index, rule in enumerate(self._rules):
            if index in hits:
                data, count = rule.apply(data)
                if count:
                    counts[rule.name] = count
                    hits = find(data) or ()  # a mask may have made a new match
        return data, counts


def _builtin_rules(names: Iterable[str]) -> list[Rule]:
    """The built-ins named, in their order of application."""
    wanted = list(names)
    _check_unique(wanted)
    for name in wanted:
        if name not in BUILTINS:
            known = ", ".join(BUILTIN_NAMES)
            raise RedactError(f"unknown built-in redaction {name!r}; the built-ins are {known}")
    chosen = [BUILTINS[name] for name in BUILTINS if name in wanted]
    return [
        Rule(b.name, b.pattern, _compiled(b.name, b.pattern), b.masker, b.rescan) for b in chosen
    ]


def _custom_rule(spec: RedactSpec) -> Rule:
    """A user's rule: its whole match, or its group named `secret`, masked."""
    pattern = _compiled(spec.name, spec.pattern)
    _check_not_empty(spec.name, pattern)
    mask = spec.mask.encode("utf-8", "surrogatepass")
    if "secret" in pattern.groupindex:
        secret = int(pattern.groupindex["secret"])
        return Rule(spec.name, spec.pattern, pattern, lambda m: masked_group(m, secret, mask))
    return Rule(
        spec.name, spec.pattern, pattern, lambda m: masked_span(m, m.start(), m.end(), mask)
    )


def _check_not_empty(name: str, pattern: CompiledPattern) -> None:
    """A RedactError if `pattern` can match the empty string (at the start or end of a
    text, a word's edge or inside a word, next to a newline: every place RE2 tells apart)."""
    for probe in _EMPTY_PROBES:
        pos = 0
        while (match := pattern.search(probe, pos)) is not None:
            if match.start() == match.end():
                raise RedactError(
                    f"redaction rule {name!r}: the pattern matches the empty string, so it "
                    "would mask nothing and search again at every character; make it match "
                    "at least one character (`x+` rather than `x*`)"
                )
            pos = match.end()


def _compiled(name: str, pattern: str) -> CompiledPattern:
    """The RE2 pattern of rule `name`, or a RedactError saying why it has none."""
    try:
        return compile_re2(pattern, _options())  # type: ignore[no-any-return]
    except RegexRefused as exc:
        raise RedactError(
            f"redaction rule {name!r}: the pattern is not valid RE2 (a linear-time regular "
            f"expression: no backreferences, no lookahead or lookbehind): {exc.reason}"
        ) from exc


def _rule_finder(rules: Iterable[Rule]) -> _FindRules:
    """One RE2 set of every rule's pattern: one pass tells which rules match in a text.

    It is RE2's own ``Set.Match`` where the ``re2`` wrapper keeps it (as ``_set``): the
    wrapper's checks around it cost a fifth of a short text with nothing to mask
    (0.47 against 0.36 µs); else the wrapper's, which does the same.
    """
    rule_set = re2.Set.SearchSet(_options())
    try:
        for rule in rules:
            rule_set.Add(rule.source)
        rule_set.Compile()
    except re2.error as exc:
        raise RedactError(
            f"the redaction rules together are too large for RE2: {re2_reason(exc)}"
        ) from exc
    raw: Any = getattr(rule_set, "_set", None)
    return cast(_FindRules, raw.Match if callable(getattr(raw, "Match", None)) else rule_set.Match)


def _options() -> object:
    options = re2.Options()
    options.max_mem = _MAX_MEM
    options.log_errors = False  # RE2 would write to stderr; errors are raised as ours
    return options


def _check_unique(names: Iterable[str]) -> None:
    """A RedactError naming the first rule name given twice."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise RedactError(f"redaction rule {name!r} is given twice")
        seen.add(name)


def _decoded(data: bytes) -> str:
    """Text again; a user's pattern that cut a character in two (\\C) leaves U+FFFD."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")
