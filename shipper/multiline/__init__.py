"""Join one stream's physical lines into events (stack traces), and filter events. Pure.

Per container, from its labels, with Filebeat's multiline semantics:

- ``logpipe.multiline.pattern``: a regular expression (RE2 syntax, as Filebeat's Go
  patterns; searched);
- ``logpipe.multiline.negate``: ``true`` inverts it, so *not* matching is what counts;
- ``logpipe.multiline.match``: ``after`` (default): a counting line is appended to the
  event before it, any other line starts a new event; ``before``: a counting line is
  prepended to the next line, and the first line that does not count ends the event;
- ``logpipe.multiline.timeout``: an event waiting this long for its next line is sent
  as it is (default 2 s, at most 300 s; ``5``, ``5s`` and ``500ms`` are understood);
- ``logpipe.multiline.max_lines`` / ``.max_bytes``: bounds of one event (default 500
  lines and 1 MiB, at most 10000 lines and 4 MiB); a line that would cross a bound starts
  a new event (nothing is dropped);
- ``logpipe.multiline`` = ``java`` | ``python`` | ``go`` | ``node`` (or ``nodejs``):
  built-in rules for stack traces (below);
- ``logpipe.include_lines`` / ``logpipe.exclude_lines``: regular expressions applied to
  whole events after joining (as Filebeat does): an event is kept when it matches the
  include expression (if any) and not the exclude expression.

Every expression runs on RE2 (:class:`Pattern`): Python's ``re`` backtracks, and one
line could hold a pattern like ``(a+)+$`` for seconds on the event loop, stalling every
container's shipping. RE2 takes time linear in the line and refuses what only
backtracking can do (look-around, back-references): such a label is reported and
ignored, as is an empty one (it would match every line: compose's ``${VAR:-}`` makes
them). A number the shipper cannot use (not a number, not positive, a fraction of a
line) is reported and the default is used; one over its upper bound (:data:`BOUNDS`: an
event is held in memory, and must stay a document Elasticsearch can index) is reported
and the bound is used. RE2 is imported, and a built-in rule compiled, when a container
first asks for one: most hosts have none, and RE2 would cost every shipper its memory.

The built-in rules start an event at a trace's first line, so the log line before it
stays an event of its own, and keep the trace's lines together up to its last one:

- ``python``: ``Traceback (most recent call last):`` (or ``+ Exception Group Traceback``)
  starts an event unless it follows ``During handling of the above exception...`` or
  ``The above exception was the direct cause...`` (a chained traceback); indented lines
  (frames, code, ``^^^^`` markers, exception group boxes), blank lines and those two
  sentences continue it, and so does the exception line (``ValueError: bad``,
  ``requests.exceptions.ConnectionError: ...``, ``KeyboardInterrupt``) right after an
  indented line of a traceback (not of any other event, nor after an exception group's
  closing box). ``ERROR:root:failed`` before a traceback is an event of its own.
- ``java``: an exception line (``java.lang.IllegalStateException: msg``) starts an event
  unless the line before it is a log line at ``WARN``, ``WARNING``, ``ERROR``,
  ``SEVERE`` or ``FATAL``: a logger prints the exception right under the message it was
  logged with, and the two stay one event. ``Exception in thread "main" ...`` always
  starts an event; indented lines (``\tat ...``, ``\t... 5 more``, ``Suppressed:``),
  ``Caused by:`` and blank lines continue it (Spring's ``... with root cause``, a blank
  line, then the exception, is one event). java.util.logging's default format writes a
  record on two lines, its time and source (``Dec 05, 2026 8:00:00 AM com.acme.Foo
  bar``), then its level and message (``SEVERE: message``), in the JVM locale's month,
  AM/PM marker and level name (``Dez. ...``, ``SCHWERWIEGEND: ...``): the second line
  continues the first only right after it, and an exception under it stays at ``SEVERE`` or
  ``WARNING``, as under any log line.
- ``go``: ``panic:`` (and any line the rule does not know) starts an event; goroutine
  headers, function and file lines, ``created by``, ``[signal ...]``, blank lines and
  ``exit status 2`` continue it.
- ``node``: an error as Node.js prints it (``console.error(err)``, an uncaught
  exception): any line the rule does not know starts an event (``Error: boom``,
  ``TypeError [ERR_INVALID_ARG_TYPE]: ...``, ``Server error: Error: boom`` from
  ``console.error('Server error:', err)``); indented lines (``    at fn (/app/x.js:3:9)``,
  the error's properties, nested ``[cause]: Error: ...`` and ``[errors]: [...]``), blank
  lines, the ``}`` closing the properties, ``caused by: ...`` (VError, pino),
  ``Emitted 'error' event ... at:``, ``Thrown at:``, ``(Use `node --trace-...` ...)`` and
  the ``Node.js v20.10.0`` Node prints last when it crashes continue it. An uncaught
  exception begins with where it was thrown (``/app/index.js:3``, ``node:events:497``,
  ``events.js:174``), the source line and a ``^`` caret line: the line after such a
  place, and the first non-blank line after the caret (``Error: boom``,
  ``[UnhandledPromiseRejection: ...]``, a thrown string), continue it whatever they are.
  As for ``java``, an error line right under a log line at ``WARN``, ``WARNING``,
  ``ERROR`` or ``FATAL`` (not a JSON line) stays in that line's event (NestJS's Logger
  prints the stack under its ``ERROR [ExceptionsHandler] message`` line); under any
  other line it starts its own. A JSON line (pino, winston, bunyan: the stack inside a
  field) is its own event. The lines of an error's message after its first are printed
  as they are, not indented, between its first line and its first frame (``Error:
  connect failed``, ``retrying disabled``, ``    at ...``): after an error's first line
  (or the line under an uncaught exception's caret) the lines that would start events
  are held back (:class:`Lookahead`) until a frame shows they are its message, and join
  it. They go as they would have gone without the lookahead at the first line that
  opens another error or a log record's (a place, JSON, ``[``, a time or a level first,
  pm2's sentence below), after more than 20 of them, at a line stamped over 1 s after
  the error's first line (Node prints an error with one write), at a line the event
  would not hold within max_lines / max_bytes, and when the event is sent on its timeout
  or flushed. An error whose name ends in neither ``Error`` nor ``Exception``
  (``Timeout: took too long``, ``Timeout [ETIMEDOUT]: ...``, ``Timeout``) holds the lines
  under it back too; as its first line could as well be a log line (``Status: ok``), a
  line of that shape under it (``Status: 500``) lets them go, as another error's first
  line, where under ``Error: ...`` it would be held as a line of the message. Right
  under a log line at ``WARN``, ``WARNING``, ``ERROR`` or ``FATAL``, such a line is held
  back with the lines under it, and joins that line's event once a frame comes (NestJS's
  ``ERROR [ExceptionsHandler] took too long``, ``Timeout: took too long``, frames). pm2 in
  cluster mode prints a rejected promise's reason under ``You have triggered an
  unhandledRejection, you may have forgotten to catch a Promise rejection:``: the line
  under it continues it, whatever it is, as the line under a caret does. These
  decisions rest on the lines and their Docker timestamps alone, so a stream read again
  after a restart is joined the same way (but for what a timeout sent).

Blank lines that end a built-in rule's event (the line after them started the next one)
are left out of its text: they count among its lines, and ``until`` is past them. A
rule of one's own (``logpipe.multiline.pattern``) keeps every line it joined, as
Filebeat does.

A joined record keeps the timestamp and sequence number of its first physical line (so
its document id does not change when it is read again) and carries in ``until`` the
position just past its last physical line, where the cursor may move.

Each container's lines go through these rules on their way to the queue, in its
follower (:mod:`shipper.shaping` keeps what a container holds back, and when).
"""

from shipper.multiline.builtin import ALIASES, BUILTINS
from shipper.multiline.joiner import Joiner, join
from shipper.multiline.labels import BOUNDS, LABELS, PREFIX, Shaping, shaping_from
from shipper.multiline.patterns import Pattern
from shipper.multiline.rules import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINES,
    DEFAULT_TIMEOUT,
    LOOKAHEAD_LINES,
    LOOKAHEAD_WINDOW_NS,
    Lookahead,
    Match,
    Rule,
)

__all__ = [
    "ALIASES",
    "BOUNDS",
    "BUILTINS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_LINES",
    "DEFAULT_TIMEOUT",
    "LABELS",
    "LOOKAHEAD_LINES",
    "LOOKAHEAD_WINDOW_NS",
    "PREFIX",
    "Joiner",
    "Lookahead",
    "Match",
    "Pattern",
    "Rule",
    "Shaping",
    "join",
    "shaping_from",
]
