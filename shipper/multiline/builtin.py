"""The built-in multiline rules (``java``, ``python``, ``go``, ``node``), each compiled
when a container first asks for it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping

from collector import jul
from shipper.multiline.patterns import Pattern
from shipper.multiline.rules import Lookahead, Rule

_EXCEPTION_LINE = r"(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)"
_JAVA = (
    r"^(?:[ \t]+\S|[ \t]*$"  # frames ("\tat ..."), any indented detail line, blank lines
    r"|[ \t]*(?:Caused by|Suppressed): "
    r"|[ \t]*\.\.\. \d+ (?:more|common frames omitted))"
)
_JAVA_START = rf"^{_EXCEPTION_LINE}"
# A logger's message line that the exception printed under it belongs to.
# The level may open the line (`SEVERE: ...` of java.util.logging, `ERROR [main] ...`;
# in other languages `SCHWERWIEGEND: ...`, `警告: ...`).
# java.util.logging's SimpleFormatter (its default format) writes a record on two lines:
# the time and the source (`Dec 05, 2026 8:00:00 AM com.acme.Foo bar`), then the level
# and the message (`SEVERE: message`). The second joins the first only right after it.
# In other languages the JDK localizes the month (`Dez.`, `12月`, Catalan's `de des.`),
# the AM/PM marker (`A. M.`, `午前`), the digits (Arabic) and the level's name
# (`SCHWERWIEGEND: `, collector/jul.py).
_JUL_HEAD = (
    r"^(?:[^\s,]{1,8} )?[^\s,]{1,8} \p{Nd}\p{Nd}?, \p{Nd}{4} "
    r"\p{Nd}\p{Nd}?:\p{Nd}\p{Nd}:\p{Nd}\p{Nd} \S"
)
_JUL_SECOND = rf"^(?:{'|'.join(jul.all_names())}): "
_JAVA_LEAD = (
    r"^(?:(?:\S.{0,80}?)?\b(?:WARN|WARNING|ERROR|SEVERE|FATAL)\b"
    rf"|(?:{'|'.join(jul.names_of('SEVERE') + jul.names_of('WARNING'))}): )"
)
_PYTHON = (
    r"^(?:[ \t]+\S|[ \t]*$"
    r"|During handling of the above exception"
    r"|The above exception was the direct cause)"
)
_PYTHON_START = r"^(?:[ \t]*\+ Exception Group |)Traceback \(most recent call last\):"
_PYTHON_LEAD = r"^(?:During handling of the above exception|The above exception was the direct)"
_PYTHON_TAIL = r"^[A-Za-z_][\w.]*(?::.*)?$"
_GO = (
    r"^(?:[ \t]+\S|[ \t]*$"
    r"|goroutine \d+ .*\]:$|created by |\[signal |exit status \d+$|runtime stack:$"
    r"|\.\.\.\d+ frames elided\.\.\."
    r"|(?:panic|[\w/.-]*\.[\w.*()$/\[\]-]*)\(.*\)$)"  # frame lines: main.(*T).Run(...)
)

# Node.js's util.inspect of an error (console.error(err), an uncaught exception): what
# continues an event whatever the line before it.
_NODE = (
    r"^(?:[ \t]+\S|[ \t]*$"  # frames ("    at ..."), properties, nested causes; blank lines
    r"|\^+[ \t]*$"  # the caret under an uncaught exception's source line, not indented
    r"|\}[ \t]*$"  # the end of the error's properties (`... {`, `  code: 'ENOENT'`, `}`)
    r"|[Cc]aused by: "  # a cause as VError and pino's serializer print it
    r"|Emitted '[^']+' event .*at:$|Thrown at:$"  # an unhandled 'error' event; --trace-uncaught
    r"|\(Use `node --trace-"  # the hint under a warning or a thrown value that is no error
    r"|Node\.js v\d+\.\d+\.\d+)"  # the version Node prints last when it crashes
)
# An error's first line: `Error: boom`, `TypeError [ERR_INVALID_ARG_TYPE]: ...`.
_NODE_START = r"^(?:[A-Za-z_$][\w$]*)?(?:Error|Exception)(?: \[[\w$]+\])?(?::|$)"
# pm2 (cluster mode) prints a rejected promise's reason under this sentence: the
# reason's stack (`Error: db down`, `Timeout: took too long`, ...) or the value rejected.
_PM2_REJECTION = (
    r"You have triggered an unhandledRejection, you may have forgotten to catch a Promise"
    r" rejection:"
)
# Where an uncaught exception was thrown (`/app/index.js:3`, `node:events:497`,
# `file:///app/index.mjs:2`, Node 14's `events.js:174`), the caret under its source line,
# and pm2's sentence: the next non-blank line (the source line; the error) continues,
# whatever it is.
_NODE_PLACE = (
    r"^(?:(?:node:[\w/.-]+|\S*\.(?:[cm]?[jt]s|[jt]sx)):\d+"
    rf"|[ \t]*\^+[ \t]*|{_PM2_REJECTION}[ \t]*)$"
)
_ANY = r"^"
# A frame of an error's stack (`    at fn (/app/x.js:3:9)`): its message is over.
_NODE_FRAME = r"^[ \t]+at \S"
# An error's first line as util.inspect prints it: `Error: boom`, `TypeError
# [ERR_INVALID_ARG_TYPE]: ...`, a subclass's `Oops [Error]: bad`, and after the message of
# `console.error('Server error:', err)`.
_NODE_ERROR = r"(?:[A-Za-z_$][\w$]*)?(?:Error|Exception)(?: \[[\w$]+\])?"
_NODE_OPENS = (
    rf"^{_NODE_ERROR}(?::|$)"
    rf"|^[A-Za-z_$][\w$]* \[{_NODE_ERROR}\](?::|$)"
    rf"|^[^{{\[\s].{{0,80}}? {_NODE_ERROR}: "
)
# A line no message goes on with: where an uncaught exception was thrown, JSON (pino,
# winston, bunyan), a bracket (`[Nest] 1  - ...`, `[Error: boom]`, pino-pretty's time), a
# log record's time or level.
_NODE_STOP = (
    r"^(?:node:[\w/.-]+|\S*\.(?:[cm]?[jt]s|[jt]sx)):\d+$"
    rf"|^{_PM2_REJECTION}"
    r"|^[{\[]"
    r"|^\d{4}-\d\d-\d\d[T ]\d\d:\d\d"
    r"|^(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\b"
)
# A line the error comes right under, whatever its first line is: an uncaught
# exception's caret, pm2's sentence.
_NODE_CARET = rf"^(?:[ \t]*\^+[ \t]*|{_PM2_REJECTION}[ \t]*)$"
# An error whose name is none of those above, as util.inspect prints it: `Timeout: took
# too long` (`class Timeout extends Error`, its name set to `Timeout`), `Timeout [ETIMEDOUT]:
# ...`, or its name alone (no message). Such a line may as well be a log line
# (`Status: ok`): it holds the lines under it back as an error's first line does, but
# under it, a line of the same shape is taken for another error, not for its message.
_NODE_NAMED = r"^[A-Z][\w$]*(?: \[[\w$]+\])?(?::(?: |$)|$)"
# A log line at WARN, ERROR or FATAL that the error printed under it belongs to; never
# a JSON line (its logger put the stack in a field, and a JSON line stays one).
_NODE_LEAD = r"^(?:[^{\s].{0,80}?)?\b(?:WARN|WARNING|ERROR|FATAL)\b"

_BUILTIN_RULES: dict[str, Callable[[], Rule]] = {
    "java": lambda: Rule(
        Pattern(_JAVA),
        start=Pattern(_JAVA_START),
        lead=Pattern(_JAVA_LEAD),
        head=Pattern(_JUL_HEAD),
        second=Pattern(_JUL_SECOND),
        trim=True,
    ),
    "python": lambda: Rule(
        Pattern(_PYTHON),
        tail=Pattern(_PYTHON_TAIL),
        start=Pattern(_PYTHON_START),
        lead=Pattern(_PYTHON_LEAD),
        trim=True,
    ),
    "go": lambda: Rule(Pattern(_GO), trim=True),
    "node": lambda: Rule(
        Pattern(_NODE),
        start=Pattern(_NODE_START),
        lead=Pattern(_NODE_LEAD),
        head=Pattern(_NODE_PLACE),
        second=Pattern(_ANY),
        trim=True,
        look=Lookahead(
            Pattern(_NODE_FRAME),
            Pattern(_NODE_OPENS),
            Pattern(_NODE_STOP),
            Pattern(_NODE_CARET),
            Pattern(_NODE_NAMED),
        ),
    ),
}
# Other names users give a built-in rule.
ALIASES = {"nodejs": "node"}


@functools.cache
def _builtin(name: str) -> Rule:
    """The built-in rule `name`, compiled once (KeyError: there is none)."""
    return _BUILTIN_RULES[name]()


class _Builtins(Mapping[str, Rule]):
    """The built-in rules by name, each compiled when a container first asks for it."""

    def __getitem__(self, name: str) -> Rule:
        return _builtin(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_BUILTIN_RULES)

    def __len__(self) -> int:
        return len(_BUILTIN_RULES)


BUILTINS: Mapping[str, Rule] = _Builtins()
