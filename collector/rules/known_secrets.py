"""The built-in redactions: each one's RE2 pattern, and which part of a match it masks.

What each finds is written out in :mod:`collector.rules.redact`; how a part of a match is
masked, in :mod:`collector.rules.spans`; card numbers, in :mod:`collector.rules.cards`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import re2

from collector.rules.cards import CARD, mask_cards
from collector.rules.spans import MASK, Masker, Match, group_number, masked_group, masked_span


@dataclass(frozen=True)
class Builtin:
    """One built-in redaction: its pattern (RE2 syntax) and what it masks of a match."""

    name: str
    pattern: str
    masker: Masker
    # Where to search again when the masker keeps a match, as it may hold another match:
    # a group's start, or a function of the match.
    rescan: int | Callable[[Match], int] | None = None


# A value after `key=` or `"key": `: a JSON string, an escaped JSON string (JSON text
# inside a JSON string), a single-quoted string, else a bare word up to the usual ends.
_VALUE = (
    r'(?P<value>"(?:[^"\\]|\\.)*"'
    r'|\\"(?:[^"\\]|\\[^"])*\\"'
    r"|'[^'\n]*'"
    r"""|["']?[^\s"'\\&,;<>)}]+)"""
)
# Between key and value: a closing quote (maybe escaped), then = or :, spaces or tabs.
_SIGN = r"""\\?["']?[ \t]*[:=]"""
_SEPARATOR = _SIGN + r"[ \t]*"
_QUOTES = (b'\\"', b'"', b"'")
_JSON_WORDS = (b"null", b"true", b"false")  # no secret in `"password": null`


_API_KEY_KEYS = r"[\w.-]*(?:api[_.-]?key|token)"
_PASSWORD_KEYS = r"[\w.-]*(?:password|passwd|pwd|secret)[\w.-]*"
# Any pair's key up to its = or :, to tell a bare "value" that is the next pair's key.
_KEY_THEN_SIGN = re2.compile(rf"(?i:{_API_KEY_KEYS}|{_PASSWORD_KEYS}){_SIGN}")


def _pair(key: str) -> str:
    """A `key=value` pattern for keys matching `key` (case-insensitive)."""
    return rf"(?i:(?P<key>{key}){_SEPARATOR}){_VALUE}"


def _mask_value(match: Match) -> tuple[bytes, int]:
    """The value of a pair masked, inside its quotes when it is a whole quoted string."""
    start, end = match.span(_VALUE_GROUP)
    value = match.string[start:end]
    for quote in _QUOTES:
        if len(value) >= 2 * len(quote) and value.startswith(quote) and value.endswith(quote):
            return masked_span(match, start + len(quote), end - len(quote))
    if _is_next_key(match.string, start, end):
        return match.group(0) or b"", 0  # `a= b=secret`: b's pair is searched next
    quote = _key_quote(match.string[match.end(_KEY_GROUP) : start])
    if quote and value in _JSON_WORDS:
        return match.group(0) or b"", 0
    return masked_span(match, start, end, quote=quote)


def _is_next_key(text: bytes, start: int, end: int) -> bool:
    """Whether the bare value at [start, end) is the key of the next pair, glued to its
    separator (``b=``, ``b": ``). Followed by a space (``password=PWD7 =``) it is masked as
    the value it may be: which of the two a writer meant cannot be told."""
    following = _KEY_THEN_SIGN.match(text, start)
    return following is not None and (following.end() <= end or text[end : end + 1] not in b" \t")


# Where a bare value ends (what _VALUE's last branch does not take).
_BARE_END = re2.compile(rb"""[\s"'\\&,;<>)}]""")


def _after_glued_keys(keys: str) -> Callable[[Match], int]:
    """Where to search again after a pair (its key matching `keys`) kept as it is: its
    value's start, past the keys of `keys` glued there one after another (`a=b=c=secret`:
    at c).

    Searched again from each of them, a bare value running to the end of the line was
    read again for each key: `password=` 8,000 times took 17 s (the time of the square of
    the line). The keys a search from there would keep too are skipped in one pass: each
    begins a match of the pair (a key of `keys` and its sign) whose value is the next
    key glued to its sign, which _is_next_key keeps.
    """
    own = re2.compile(rf"(?i:{keys}){_SIGN}")

    def resume(match: Match) -> int:
        start = match.start(_VALUE_GROUP)
        if start < 0:
            return -1
        text = match.string
        bare_end = _BARE_END.search(text, start)
        end = bare_end.start() if bare_end is not None else len(text)
        pos = start
        while (key := own.match(text, pos)) is not None and key.end() <= end:
            value = key.end()
            while value < end and text[value] in b" \t":
                value += 1
            following = _KEY_THEN_SIGN.match(text, value)
            if following is None or following.end() > end:
                break
            pos = value
        return pos

    return resume


def _key_quote(separator: bytes) -> bytes:
    """The quote that closed the key (JSON ``"key": 1234``), so that the mask of a bare
    value gets it too and JSON text stays JSON; none after a bare key."""
    return next((quote for quote in _QUOTES if separator.startswith(quote)), b"")


# --- bearer -----------------------------------------------------------------------------

# "Bearer" said twice (`Bearer Bearer <token>`: a client that put the word before a token
# that had it already) is one keyword: else the second word is taken for the token and
# the token after it stays.
_BEARER = r"(?i)\bbearer(?:[ \t]+bearer\b)*[ \t]+(?P<token>[^\s\"'\\<>,;()\[\]{}]+)"
_BEARER_TOKEN = group_number(_BEARER, "token")
_AUTHORIZATION = b"authorization"


def _mask_bearer(match: Match) -> tuple[bytes, int]:
    """The token after "Bearer": always in an Authorization header, elsewhere when token-like."""
    start, end = match.span(_BEARER_TOKEN)
    token = match.string[start:end]
    if not _looks_like_token(token) and not _after_authorization(match.string, match.start()):
        return match.group(0) or b"", 0
    if _is_next_key(match.string, start, end):
        return match.group(0) or b"", 0  # `Bearer X-Api-Key: k`: that pair's rule masks k
    return masked_group(match, _BEARER_TOKEN)


def _after_authorization(text: bytes, start: int) -> bool:
    """Whether "Authorization" and at most 6 other signs (`: `, `": "`) come before `start`.

    Looked up behind the match rather than matched as part of it, so that a match which
    masks nothing never swallows the header name of the next one.
    """
    end = start
    while end > 0 and start - end < 6 and not _is_word_or_newline(text[end - 1]):
        end -= 1
    return text[max(0, end - len(_AUTHORIZATION)) : end].lower() == _AUTHORIZATION


def _is_word_or_newline(byte: int) -> bool:
    return 48 <= byte <= 57 or 65 <= byte <= 90 or 97 <= byte <= 122 or byte in b"\r\n"


def _looks_like_token(token: bytes) -> bool:
    """Not an English word: 8+ characters with a non-letter, or 20+ characters."""
    return len(token) >= 20 or (len(token) >= 8 and not token.isalpha())


# --- api_key ----------------------------------------------------------------------------

_KEY_PREFIXES = (
    r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}"  # Stripe secret and restricted keys
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[0-9A-Za-z]{36,}"  # GitHub tokens
    r"|\bgithub_pat_[0-9A-Za-z_]{22,}"  # GitHub fine-grained tokens
    r"|\bglpat-[0-9A-Za-z_-]{20,}"  # GitLab personal access tokens
    r"|\bxox[abposr]-[0-9A-Za-z-]{10,}"  # Slack tokens
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|\bsk-[0-9A-Za-z_-]{20,}"  # OpenAI / Anthropic style keys (with a digit: see below)
)
_API_KEY = _pair(_API_KEY_KEYS) + "|" + _KEY_PREFIXES
_KEY_GROUP = group_number(_API_KEY, "key")  # the same in every pair pattern
_VALUE_GROUP = group_number(_API_KEY, "value")


def _mask_api_key(match: Match) -> tuple[bytes, int]:
    """The value of an API key pair, or a whole token with a well-known prefix."""
    if match.start(_VALUE_GROUP) >= 0:
        return _mask_value(match)
    token = match.group(0) or b""
    if token.startswith(b"sk-") and not any(byte in _DIGITS for byte in token):
        return token, 0  # kebab-case names such as sk-payments-worker-deployment
    return MASK, 1  # masked whole: no mask can be inside, the token holds no brackets


_DIGITS = frozenset(b"0123456789")

# --- url_password -----------------------------------------------------------------------

# The user holds no brackets (RFC 3986), so a mask put in by a later rule (an e-mail
# address) never becomes one: `a://x@y.com:pw@` would otherwise mask pw only the 2nd time.
_URL_PASSWORD = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\[\]\"'<>]*:(?P<password>[^\s/?#\"'<>]+)@"

_URL_SECRET = group_number(_URL_PASSWORD, "password")

# --- password_pair ----------------------------------------------------------------------

_PASSWORD_PAIR = _pair(_PASSWORD_KEYS)

# --- email ------------------------------------------------------------------------------

_EMAIL = r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+(?P<tld>[A-Za-z]{2,63})\b"
_EMAIL_TLD = group_number(_EMAIL, "tld")
# Endings of file names that look like addresses: logo@2x.png, icon@3x.webp.
_FILE_ENDINGS = frozenset(
    b"png jpg jpeg gif svg webp avif ico bmp css js mjs map json html htm txt pdf".split()
)


def _mask_email(match: Match) -> tuple[bytes, int]:
    """The whole address, unless its last label is a file name's ending."""
    if (match.group(_EMAIL_TLD) or b"").lower() in _FILE_ENDINGS:
        return match.group(0) or b"", 0
    return MASK, 1  # masked whole: no mask can be inside, an address holds no brackets


# Applied in this order, each to the text the previous ones left (see collector.rules.redact).
BUILTINS: Mapping[str, Builtin] = {
    builtin.name: builtin
    for builtin in (
        Builtin("card", CARD, mask_cards),
        Builtin("bearer", _BEARER, _mask_bearer, rescan=_BEARER_TOKEN),
        Builtin("api_key", _API_KEY, _mask_api_key, rescan=_after_glued_keys(_API_KEY_KEYS)),
        Builtin("url_password", _URL_PASSWORD, lambda match: masked_group(match, _URL_SECRET)),
        Builtin(
            "password_pair", _PASSWORD_PAIR, _mask_value, rescan=_after_glued_keys(_PASSWORD_KEYS)
        ),
        Builtin("email", _EMAIL, _mask_email),
    )
}
