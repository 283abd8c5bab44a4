"""Log levels: normalising level values, and finding a level in plain text.

Every level is normalised to one of six lower-case names, the ones Kibana users filter
on: ``trace``, ``debug``, ``info``, ``warn``, ``error``, ``fatal``.

- ``notice`` (syslog, nginx, Apache), ``informational``, ``log`` (PostgreSQL, NestJS) and
  ``note`` (MySQL, MariaDB) are ``info``; PostgreSQL's ``DEBUG1`` ... ``DEBUG5`` are
  ``debug``.
- ``critical``/``crit``, ``panic``, ``emerg``/``emergency`` and ``alert`` are ``fatal``:
  they are the levels above ``error`` in syslog, Python (``CRITICAL`` is ``FATAL`` there)
  and zap, and nobody filters for them apart from "worse than error".
- Java's ``SEVERE`` and .NET's ``fail`` are ``error``; ``FINE`` is ``debug``,
  ``FINER``/``FINEST`` ``trace``.
- Numbers are bunyan/pino levels (10 trace ... 60 fatal); any other number is not a level
  (Python's levelno and syslog severities disagree with them, so guessing would lie).

In plain text a level is the one a logger wrote, never a level word of the message's
prose (``connection closed after the trace completed`` has no level). It is recognised
as a level field at the end of the line's header (below), or in the first
:data:`PLAIN_WINDOW` characters as a level word marked the way loggers mark levels:
in upper case (``npm WARN``, ``ERROR:root:``), in brackets (``(debug)``, structlog's
padded ``[info     ]``), before a colon or a pipe (``failed, error: timeout``,
``app | warn |``), after a pipe, or as the value of a level key (``level=info``,
``severity: error``, ``"level":"warn"``); and as a one-letter tag in brackets (``<E>``,
``[W]``), Android ``E/Tag:``, glog/klog ``E0102 03:04:05...`` (CockroachDB's
``I241205 08:00:00.123456`` too), a syslog priority prefix ``<3>``, and a logger's
``name:level`` opening the line (``prisma:warn``, ``app:error``). Words inside names,
paths and keys (``error.go``, ``/var/log/error``, ``error=nil``, ``std::error::Error``)
never count, but for Monolog's (Laravel's, Symfony's) ``channel.LEVEL:``
(``production.ERROR:``). Lines that open or close a stack
trace are ``error`` (``Traceback (most recent call last):``, ``Exception in thread``,
``Caused by:``, .NET's ``Unhandled exception.``, an exception name such as
``ValueError:`` or ``java.lang.IllegalStateException:``), and a Go ``panic:`` or a Rust
``thread 'main' panicked at`` is ``fatal``; the frames between them have no level.
java.util.logging's two-line record joined (``Dec 05, 2026 8:00:00 AM com.acme.Foo bar``,
a newline, ``SEVERE: message``) has its second line's level (``CONFIG`` is ``info``), also
as a JVM in another locale prints it (``Dez. 05, 2026 8:00:00 AM ...``, ``SCHWERWIEGEND:
...``; ``12月 05, 2026 8:00:00 午前 ...``, ``重大: ...``: the names in :mod:`collector.jul`).
A Node.js error's name may carry its code (``TypeError [ERR_INVALID_ARG_TYPE]: ...``), and
Node's report of an uncaught exception joined (where it was thrown, ``/app/index.js:3``
or ``node:events:497``, a newline, the source line, a newline, a ``^`` caret line, then
the error, whatever was thrown) is ``error``, and so is pm2's report of a rejected promise
(``You have triggered an unhandledRejection, you may have forgotten to catch a Promise
rejection:``, a newline, the reason). A Node.js error of any name with its frames joined
(``Timeout: took too long``, perhaps more lines of its message, then ``    at ...``) is
``error`` too, unless its first line names another level (``INFO: ...``).

Three shapes are told by their place rather than their distance from the start, and
are looked for before the level words: the level column of Android logcat's
``threadtime`` and ``time`` formats (``05-14 09:12:03.512  1234  1290 E Tag: ...``; a
capital letter anywhere else is no level), Redis's level mark after its time
(``1:M 05 Dec 2026 08:00:00.123 * Ready``: ``.`` and ``-`` are ``debug``, ``*``
``info``, ``#`` ``warn``), and the level field of a line's header, however long
the header: an upper-case level word (``RAS KERNEL INFO``, ``WARN``, ``[ERROR]``), a
bracketed one in any case, log4j's thread and level (``[main/INFO]``), MySQL's
``[System]`` (``info``), a syslog ``facility.severity`` (``daemon.err``), or a level
word in lower case (``info``, zap's console format; ``error Command failed``, yarn's),
in any case before a colon (``Warning:``), or ``Error``, ``Warn``, ``Warning``, ``Fatal``
capitalised (``2024/01/02 15:04:05 Error connecting to db``: Go's ``log.Printf``), standing
after nothing but header-like tokens (numbers, timestamps, ids, node and dotted names,
upper-case tags, bracketed fields, separators, a host name before ``daemon.err``, npm's
``npm``), or first on the line. The first token that reads like prose starts the
message, so ``RAS KERNEL INFO instruction cache parity error corrected`` is ``info`` and
``Trace completed in 5ms`` has no level; past the first :data:`PLAIN_WINDOW` characters,
only such a field counts.
"""

from __future__ import annotations

import re

from collector import jul
from collector.parse.result import JSONValue

TRACE, DEBUG, INFO, WARN, ERROR, FATAL = "trace", "debug", "info", "warn", "error", "fatal"
LEVELS = frozenset({TRACE, DEBUG, INFO, WARN, ERROR, FATAL})

# How far into a plain line a marked level word (`ERROR`, `error:`) may stand: past a
# timestamp, a thread name and a logger, but not deep in the message, where even a
# marked one is usually part of the story.
PLAIN_WINDOW = 80

_NAMES: dict[str, str] = {
    **dict.fromkeys(["trace", "trc", "trce", "verbose", "finer", "finest", "v", "t"], TRACE),
    **{f"trace{n}": TRACE for n in range(1, 9)},  # Apache's trace1 .. trace8
    **dict.fromkeys(["debug", "dbg", "dbug", "fine", "d"], DEBUG),
    **{f"debug{n}": DEBUG for n in range(1, 6)},  # PostgreSQL's DEBUG1 .. DEBUG5
    **dict.fromkeys(["info", "inf", "information", "informational", "notice", "i"], INFO),
    **dict.fromkeys(["log", "note"], INFO),  # PostgreSQL's and NestJS's LOG, MySQL's Note
    **dict.fromkeys(["warn", "warning", "wrn", "w"], WARN),
    **dict.fromkeys(["error", "err", "eror", "severe", "fail", "e"], ERROR),
    **dict.fromkeys(
        ["fatal", "ftl", "critical", "crit", "panic", "dpanic", "emerg", "emergency"], FATAL
    ),
    **dict.fromkeys(["alert", "f", "a"], FATAL),
}
_BUNYAN = {10: TRACE, 20: DEBUG, 30: INFO, 40: WARN, 50: ERROR, 60: FATAL}
_SYSLOG = (FATAL, FATAL, FATAL, ERROR, WARN, INFO, INFO, DEBUG)

# A level word standing alone, searched in the lower-cased window (a case-sensitive
# search is several times faster; the factored alternation helps too): not part of an
# identifier, a file name (`error.go`), a hyphenated word, nor the key of `error=...`.
# _by_word also rejects words after a path or name separator (`/var/log/error`).
_WORDS = (
    r"t(?:race|rce)|d(?:ebug|bug)|i(?:nfo)|n(?:otice)|w(?:arn(?:ing)?)"
    r"|e(?:rr(?:or)?|merg(?:ency)?)|s(?:evere)|c(?:rit(?:ical)?)|f(?:atal|ail)|p(?:anic)"
)
_WORD = re.compile(rf"\b({_WORDS})(?![\w=-]|\.\w)", re.ASCII)
_WORD_BEFORE = "./\\-"
_LETTER = re.compile(r"[<\[]([TDIWEF])[>\]]")
# glog/klog (`E0102 03:04:05...`) and CockroachDB's, whose date has its year too
# (`I241205 08:00:00.123456 ...`).
_GLOG = re.compile(r"([IWEF])(?:\d\d)?\d{4} \d\d:\d\d:\d\d")
# A logger's name and level as the line's first token: `prisma:warn ...` (Prisma, the
# `debug` package's `app:error` namespaces).
_NAME_LEVEL = re.compile(
    r"[a-z][a-z0-9_-]{0,39}:(trace|debug|info|warn|warning|error|fatal)(?=\s|\Z)", re.ASCII
)
_ANDROID = re.compile(r"([VDIWEFA])/[^\s:(]+\s*(?:\(\s*\d+\))?:")
_SYSLOG_PREFIX = re.compile(r"<([0-7])>")
# Android logcat's `threadtime` (`05-14 09:12:03.512  1234  1290 E Tag: ...`, also with
# the year) and `time` (`05-14 09:12:03.512 E/Tag( 1234): ...`) formats: the letter counts
# only in its own column, never as a stray capital in the message.
_LOGCAT = re.compile(
    r"(?:\d{4}-)?\d\d-\d\d \d\d:\d\d:\d\d\.\d+"
    r"(?: +\d+ +\d+ ([VDIWEFA]) | ([VDIWEFA])/[^\s:(]+\s*(?:\(\s*\d+\))?:)"
)
# Redis marks its level with one character after the time (`1:M 05 Dec 2026
# 08:00:00.123 * Ready to accept connections`): `.` debug, `-` verbose, `*` notice, `#`
# warning. Its verbose is above debug, so it is `debug` here, not `trace`.
_REDIS = re.compile(
    r"\d+:[XCSM] \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3} ([.*#-]) ", re.ASCII
)
_REDIS_LEVELS = {".": DEBUG, "-": DEBUG, "*": INFO, "#": WARN}
# An exception's name, perhaps with Node's code of the error (`Error [ERR_X]:`), ending
# its line or before a colon.
_EXCEPTION = re.compile(
    r"(?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Error|Exception)(?: \[[\w$]+\])?(?::|\Z)"
)
# Node.js's report of an uncaught exception, joined by the shipper's multiline rule
# `node`: where it was thrown (`/app/index.js:3`, `node:events:497`), the source line, and
# a caret under it. What follows is the error, or any value thrown (`boom`).
_NODE_CRASH = re.compile(r"[^\x00-\x20]+:[0-9]+\n[^\n]*\n[ \t]*\^+[ \t]*(?:\n|\Z)")
_STARTS: tuple[tuple[str, str], ...] = (
    ("Traceback (most recent call last):", ERROR),
    ("Exception in thread ", ERROR),
    ("Caused by: ", ERROR),
    ("Unhandled exception. ", ERROR),  # .NET's crash: `Unhandled exception. System.X: ...`
    # pm2's sentence above a rejected promise's reason (the multiline rule `node` joins them)
    ("You have triggered an unhandledRejection, ", ERROR),
    ("panic: ", FATAL),
)
_START_PREFIXES = tuple(prefix for prefix, _ in _STARTS)
# An error of any name as Node.js prints it, joined by the shipper's multiline rule
# `node`: its first line (`Timeout: took too long`, `Timeout [ETIMEDOUT]: ...`, its name
# alone), at most 20 further lines of its message, then a frame (`    at f (/app/x.js:1:2)`).
_NODE_ERROR = re.compile(
    r"[A-Z][\w$]*(?: \[[\w$]+\])?(?:: [^\n]*|:)?\n(?:[^\n]*\n){0,20}?    at \S", re.ASCII
)
# A Rust panic: `thread 'main' panicked at src/main.rs:2:5:`.
_RUST_PANIC = re.compile(r"thread '[^']*' panicked at ")


def normalise_level(value: JSONValue) -> str | None:
    """The normalised level for a level field's value, or None if it names no level."""
    if isinstance(value, str):
        return _NAMES.get(value.strip().lower())
    if isinstance(value, int) and not isinstance(value, bool):
        return _BUNYAN.get(value)
    return None


def detect_level(text: str) -> str | None:
    """The level a plain-text line announces in its header or near its start, or None."""
    first = text[:1]
    if not first:
        return None
    if _node_crash(text):
        return ERROR
    if first.isalpha():
        level = _by_prefix(text, first)
        if level is not None:
            return level
    elif first == "<":
        m = _SYSLOG_PREFIX.match(text)
        if m is not None:
            return _SYSLOG[int(m.group(1))]
    elif first.isdigit():
        m = _LOGCAT.match(text)
        if m is not None:
            return _NAMES[(m.group(1) or m.group(2)).lower()]
        m = _REDIS.match(text)
        if m is not None:
            return _REDIS_LEVELS[m.group(1)]
        level = _jul(text)  # a month in digits: `12月 05, 2026 8:00:00 午前 ...`
        if level is not None:
            return level
    elif first.isspace():
        return _by_word(text)  # an indented line (a stack frame) has no header
    return _by_header(text) or _by_word(text) or _node_error(text)


def _node_crash(text: str) -> bool:
    """Whether `text` is Node's report of an uncaught exception (``_NODE_CRASH``)."""
    end = text.find("\n")
    # most lines are one line, or do not end their first line with a line number
    return end > 0 and "0" <= text[end - 1] <= "9" and _NODE_CRASH.match(text) is not None


def _node_error(text: str) -> str | None:
    """``error`` for a Node.js error of any name with its frames (``_NODE_ERROR``)."""
    if "\n    at " not in text:  # most texts are one line, or no Node error
        return None
    return ERROR if _NODE_ERROR.match(text) is not None else None


def _by_prefix(text: str, first: str) -> str | None:
    """Levels that only a line's first characters can tell."""
    m = None
    if text[1:2] == "/":
        m = _ANDROID.match(text)
    elif first in "IWEF" and text[1:5].isdigit():
        m = _GLOG.match(text)
    elif (level := _jul(text)) is not None:
        return level
    if m is not None:
        return _NAMES[m.group(1).lower()]
    if "a" <= first <= "z":
        m = _NAME_LEVEL.match(text)
        if m is not None:
            return _NAMES[m.group(1)]
    if text.startswith(_START_PREFIXES):
        return next(level for prefix, level in _STARTS if text.startswith(prefix))
    if first == "t" and _RUST_PANIC.match(text) is not None:
        return FATAL
    if ("Error" in text or "Exception" in text) and _EXCEPTION.match(text) is not None:
        return ERROR
    return None


def _jul(text: str) -> str | None:
    """The level of java.util.logging's two lines joined (``_JUL``), or None."""
    if text.find(", ", 1, 22) < 0:  # the comma after the month and the day
        return None
    m = _JUL.match(text)
    if m is None:
        return None
    if m[1] in ("午前", "午後"):
        return _JUL_JA.get(m[2]) or _JUL_NAMES[m[2]]
    return _JUL_NAMES[m[2]]


def _by_word(text: str) -> str | None:
    window = text[:PLAIN_WINDOW]
    if "[" in window or "<" in window:
        m = _LETTER.search(window)
        if m is not None:
            return _NAMES[m.group(1).lower()]
    lower = window.lower()
    pos = 0
    while (m := _WORD.search(lower, pos)) is not None:
        start, pos = m.span()
        if start and lower[start - 1] in _WORD_BEFORE and not _channel_level(text, start, pos):
            continue  # a path or a dotted name: `/var/log/error`, `com.acme.error.Handler`
        if pos == len(window) < len(text) and (text[pos].isalnum() or text[pos] in "_=-."):
            return None  # the window cut a longer word in two
        if _marked(text, start, pos):
            return _NAMES[m.group(1)]
    return None


def _channel_level(text: str, start: int, end: int) -> bool:
    """Monolog's (Laravel's, Symfony's) ``channel.LEVEL:``: ``production.ERROR: ...``."""
    return text[start - 1] == "." and text[end : end + 1] == ":" and text[start:end].isupper()


def _marked(text: str, start: int, end: int) -> bool:
    """Whether the level word at ``text[start:end]`` is marked as a logger marks a level.

    Upper case (``WARN``), in brackets (``(debug)``), before a colon or a pipe, after a
    pipe, or as the value of a level key (``level=info``, ``severity: error``); prose
    (``after the trace completed``) marks none.
    """
    if text[start:end].isupper():
        return True
    after = text[end : end + 2]
    before = text[max(start - 2, 0) : start]
    if after[:1] == ":":
        return after != "::"  # not a path: `std::error::Error`
    if "|" in after[:1] or after == " |" or before[-1:] == "|" or before == "| ":
        return True
    # In brackets, perhaps padded: structlog's `[info     ]`, Logstash's `[INFO ]`.
    if before[-1:] in ("[", "<", "(") and text[end : end + 12].lstrip(" ")[:1] in ("]", ">", ")"):
        return True
    return _LEVEL_KEY.search(text, max(start - 12, 0), start) is not None


# The key of a level value in free text: `level=`, `lvl:`, `severity: `, `"level":"`.
_LEVEL_KEY = re.compile(r'(?i:level|lvl|severity)"?[=:] ?"?\Z', re.ASCII)


def _alternation(words: list[str]) -> str:
    """A regex for exactly `words`, factored by first letter (sre tries branches in turn)."""
    by_first: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        by_first.setdefault(word[0], []).append(word[1:])
    branches = []
    for first, rests in by_first.items():
        tails = [rest for rest in rests if rest]
        tail = _alternation(tails) if tails else ""
        if len(tails) > 1 or (tails and "" in rests):
            tail = f"(?:{tail})" + ("?" if "" in rests else "")
        branches.append(re.escape(first) + tail)
    return "|".join(branches)


# java.util.logging's default format, its two lines joined (the shipper's multiline
# rule `java`): `Dec 05, 2026 8:00:00 AM com.acme.Foo bar` then `SEVERE: message`, in
# any language the JDK prints it: the month as the locale abbreviates it (`Dez.`, `févr.`,
# `12月`, Catalan's `de des.`, Vietnamese's `thg 12`), its AM/PM marker (`A. M.`, `午前`),
# and the level's localized name (`SCHWERWIEGEND`, `AVERTISSEMENT`, `情報`).
_JUL = re.compile(
    r"(?:[^\s,]{1,8} )?[^\s,]{1,8} \d\d?, \d{4} \d\d?:\d\d:\d\d (\S+)[^\n]*\n"
    rf"({_alternation([name for names in jul.NAMES.values() for name in names])}): "
)
# CONFIG stands between INFO and FINE (as SLF4J's bridge maps it).
_JUL_LEVELS = dict(zip(jul.LEVELS, (ERROR, WARN, INFO, INFO, DEBUG, TRACE, TRACE), strict=True))
# Japanese `詳細` is FINER, Chinese (zh_TW) `詳細` FINE: Japanese AM/PM markers tell them.
_JUL_JA = {
    name: _JUL_LEVELS[level] for level, name in zip(jul.LEVELS, jul.NAMES["ja"], strict=True)
}
_JUL_NAMES = {
    name: _JUL_LEVELS[level]
    for language, names in jul.NAMES.items()
    if language != "ja"
    for level, name in zip(jul.LEVELS, names, strict=True)
} | {name: level for name, level in _JUL_JA.items() if name != "詳細"}


# A level field in a line's header, at any distance from the start: an upper-case level
# word (`INFO`, `FATAL:`), a bracketed one in any case (`[ERROR]`, `<warn>`), a syslog
# `facility.severity` (`daemon.err`), or a level word in lower case, before a colon, or
# one of _CAPITALS, found only while every token before it looks like a header field.
# The first token that reads like prose (`instruction`, `failed,`) starts the message,
# and level words from there on are part of the story.
_HEADER_WORDS = [name for name in _NAMES if len(name) > 1]
_FACILITY = r"(?:kern|user|mail|daemon|auth(?:priv)?|syslog|lpr|news|uucp|cron|ftp|local[0-7])"
_SEVERITY = r"emerg|alert|crit|err|warn(?:ing)?|notice|info|debug"
# Capitalised level words that open a message as a level does (`Error connecting to db`,
# Go's log.Printf); others (`Trace completed`, `Debug mode on`) are prose.
_CAPITALS = frozenset({"Err", "Error", "Warn", "Warning", "Fatal"})
_HEADER_LEVEL = (
    rf"(?:(?P<upper>{_alternation([w.upper() for w in _HEADER_WORDS])}):?"
    rf"|[\[<(](?P<bracketed>(?i:{_alternation(_HEADER_WORDS)}))[\]>)]:?"
    rf"|{_FACILITY}\.(?P<severity>{_SEVERITY})"
    # log4j's thread and level in one bracket: `[main/INFO]`, `[Server thread/WARN]:`.
    r"|\[[^\]\n/]{1,200}/(?P<thread>TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\]:?"
    r"|\[(?P<system>System)\]"  # MySQL 8's `[System]`, between `[Note]` and `[Warning]`
    rf"|(?P<word>(?i:{_WORDS}))(?P<colon>:)?"
    r")(?=\s|\Z)"
)
_PUNCT = r".\-_:/@$=#"
_HEADER_FIELD = (
    # A bracketed field first: `[00 A]` must not be taken as the id `[00` and a stray `A]`.
    r"(?:\[[^\]\n]{0,200}+\]\S*+"  # a bracketed field, with spaces: `[main]`, `[req-1 - -]`
    rf"|(?=[^\s\d{_PUNCT}]*+(?:\d|[{_PUNCT}]\S))\S++"  # times, ids, nodes, dotted names
    r"|[A-Z][A-Z\d_]*+:?"  # an upper-case tag: `RAS`, `KERNEL`, `UTC`
    r"|(?:J(?:an|u[nl])|Feb|Ma[ry]|Apr|Aug|Sep|Oct|Nov|Dec|Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un))"
    r"|[^\w\s]++"  # a separator: `-`, `|`, `#`
    rf"|[a-z][\w-]*+(?=[ \t]++{_FACILITY}\.)"  # a host name before `daemon.err`
    r"|npm"  # npm's own tag: `npm warn deprecated ...`, `npm error code ...` (npm 10)
    r")[ \t]++"
)
# Lazy: the level is tried at each token before the token is taken as a field.
_HEADER = re.compile(rf"(?>{_HEADER_FIELD})*?{_HEADER_LEVEL}", re.ASCII)


def _by_header(text: str) -> str | None:
    m = _HEADER.match(text)
    if m is None:
        return None
    if m["system"] is not None:
        return INFO
    word = m["upper"] or m["bracketed"] or m["severity"] or m["thread"]
    if word is None:
        # One alternative for the words in any case (fewer for sre to try at each token);
        # which of them count is told here: no token they reject could be a header field.
        word = m["word"]
        if not (word.islower() or m["colon"] or word in _CAPITALS):
            return None
    return _NAMES[word.lower()]
