"""Dissect patterns: a line cut at the literal text between ``%{...}`` keys. Pure.

``%{client} - %{user} [%{time}] "%{request}" %{status}`` takes everything up to the next
literal (``" - "``, ``" ["``...) into each key, the last key taking the rest of the line.
No backtracking, so a line costs one scan however it is written. Keys:

- ``%{name}``: the text up to the next literal, into ``name``;
- ``%{}`` or ``%{?name}``: the same text, skipped;
- ``%{name->}``: then skip further repeats of the literal that follows (padding, as in
  columns aligned with spaces).

Two keys with no literal between them could split the text anywhere: a pattern error.

The cut is a chain of ``str.find``: each key takes the text up to the first occurrence
of its literal at or after where the previous literal ended, and is never revisited
(with ``->``, further repeats of the literal right after are skipped too). No regular
expression sees what a user writes; on an access log line this is a little faster than
one compiled expression of atomic groups doing the same (its ``groupdict`` included).
Text after the last literal of a pattern that ends in a literal is ignored.

That chain is written out once per pattern as a small function (``Dissect.cut``: one
``find`` per literal in a row, the dict made at the end), which costs a line about
two thirds of the loop that reads the pattern's steps (``Dissect.__call__``, which it
must equal: tests/collector/test_rules_fastpaths.py). Only the key names (letters,
digits and ``_``, checked) and offsets are written into its source; the literals are
values it reads, never code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from collector.errors import RulesError

# A key as written, `%{name}`, `%{?name}`, `%{name->}` or `%{}`: what is between the braces.
KEY = re.compile(r"%\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class _Key(NamedTuple):
    name: str | None  # None: skipped
    delimiter: str  # the literal after the key; "" for the last one (takes the rest)
    padded: bool


class Dissect:
    """A dissect pattern, parsed once."""

    __slots__ = ("cut", "keys", "names", "prefix", "steps")

    def __init__(self, pattern: str) -> None:
        pieces = KEY.split(pattern)
        # pieces: literal, key, literal, key, ..., literal
        for literal in pieces[::2]:
            if "%{" in literal:
                raise RulesError(
                    f"a key is not closed: {literal[literal.index('%{') :][:40]!r} has no '}}'"
                )
        if len(pieces) < 3:
            raise RulesError("a dissect pattern needs at least one %{key}")
        self.prefix = pieces[0]
        keys: list[_Key] = []
        for i in range(1, len(pieces), 2):
            delimiter = pieces[i + 1]
            if not delimiter and i + 2 < len(pieces):
                raise RulesError(
                    f"keys %{{{pieces[i]}}} and %{{{pieces[i + 2]}}} have no text between "
                    "them, so the line could be split anywhere: put a literal between them"
                )
            keys.append(_key(pieces[i], delimiter))
        self.keys = tuple(keys)
        self.names = tuple(k.name for k in keys if k.name is not None)
        if len(set(self.names)) != len(self.names):
            raise RulesError("a key appears twice in the dissect pattern")
        # What the hot path reads per key, unpacked at once: name, literal, its length.
        self.steps = tuple((k.name, k.delimiter, len(k.delimiter), k.padded) for k in keys)
        # The same cut, written out for this pattern: what the hot path calls.
        self.cut: Callable[[str], dict[str, str] | None] = _written_out(self.prefix, self.steps)

    def __call__(self, text: str) -> dict[str, str] | None:
        """The keys' values, or None when `text` does not have the pattern's shape."""
        prefix = self.prefix
        if not text.startswith(prefix):
            return None
        pos = len(prefix)
        out: dict[str, str] = {}
        find = text.find
        for name, delimiter, size, padded in self.steps:
            if not size:  # the last key: the rest of the line
                if name is not None:
                    out[name] = text[pos:]
                return out
            end = find(delimiter, pos)
            if end < 0:
                return None
            if name is not None:
                out[name] = text[pos:end]
            pos = end + size
            if padded:
                while text.startswith(delimiter, pos):
                    pos += size
        return out


def _key(spec: str, delimiter: str) -> _Key:
    padded = spec.endswith("->")
    name = spec.removesuffix("->")
    if name == "" or name.startswith("?"):
        return _Key(None, delimiter, padded)
    if _NAME.fullmatch(name) is None:
        raise RulesError(
            f"%{{{spec}}}: a key is a name of letters, digits and _ (at most 64), "
            "optionally ending in -> (skip padding); %{} or %{?name} skips text"
        )
    return _Key(name, delimiter, padded)


_Step = tuple[str | None, str, int, bool]


class CutCode(NamedTuple):
    """A pattern's cut as lines of a function's body over ``text``, for `exec`.

    `values`: each kept key's expression (in the pattern's order); `env`: the globals the
    lines read (the literals).
    """

    lines: list[str]
    env: dict[str, object]
    values: dict[str, str]


def cut_code(prefix: str, steps: tuple[_Step, ...]) -> CutCode:
    """The lines that cut `text` as `Dissect.__call__` does, returning None if it fails.

    Literals are passed in as globals (``P``, ``L0``, ``L1``...), never written into the
    source; key names are checked (``_NAME``: letters, digits, ``_``) and written with
    repr; the rest is offsets.
    """
    env: dict[str, object] = {"P": prefix}
    code: list[str] = []
    if prefix:
        code.append("    if not text.startswith(P):")
        code.append("        return None")
    start = str(len(prefix))  # where the current key's text starts: an expression
    values: dict[str, str] = {}
    for i, (name, delimiter, size, padded) in enumerate(steps):
        if not size:  # the last key: the rest of the line
            if name is not None:
                values[name] = f"text[{start}:]"
            break
        env[f"L{i}"] = delimiter
        code.append(f"    e{i} = text.find(L{i}, {start})")
        code.append(f"    if e{i} < 0:")
        code.append("        return None")
        if name is not None:
            values[name] = f"text[{start}:e{i}]"
        if padded:
            code.append(f"    p{i} = e{i} + {size}")
            code.append(f"    while text.startswith(L{i}, p{i}):")
            code.append(f"        p{i} += {size}")
            start = f"p{i}"
        else:
            start = f"e{i} + {size}"
    return CutCode(code, env, values)


def written(name: str, head: str, body: list[str], env: dict[str, object]) -> Callable[..., Any]:
    """The function `name` of signature `head` and lines `body`, made with `env`."""
    source = "\n".join([f"def {name}({head}):", *body])
    exec(compile(source, f"<{name} of a parsing rule>", "exec"), env)
    return cast(Callable[..., Any], env[name])


def _written_out(prefix: str, steps: tuple[_Step, ...]) -> Callable[[str], dict[str, str] | None]:
    """`Dissect.__call__` for one pattern as straight-line code: no loop, no step tuples."""
    code = cut_code(prefix, steps)
    pairs = ", ".join(f"{name!r}: {value}" for name, value in code.values.items())
    return written("cut", "text", [*code.lines, f"    return {{{pairs}}}"], code.env)
