"""Turn a request body (NDJSON wire lines) into documents. Pure: no I/O.

A line that is not valid JSON, or off-schema, or refers to an unknown source, becomes a
:class:`~collector.wire.LineError` and a dead-letter document holding the raw line and
naming who sent it, so the good lines of the same batch are never lost and the bad ones
never vanish. Invalid UTF-8 (or an escape of a lone surrogate) is not a reason to refuse
a line: it is replaced (U+FFFD) and the document tagged ``invalid_utf8``. A line with
the `_id` of an earlier line of its batch but another text (a sender that numbers the
lines of one timestamp alike) is set apart for the dead-letter stream too
(:func:`set_apart_same_ids`): indexed, it would be taken for that line sent again.

A log line whose message is longer than ``Context.max_line_bytes`` (a sender that cuts
nothing) is cut there as the shipper cuts its lines and marked truncated before anything
reads it (:func:`_cut`); the compiled path hands such a line to the per-line code here.

With parsing rules or redaction in force each log line goes through them instead
(collector/rules/document.py): a line a ``drop`` rule takes is counted under the
rule's name, never indexed and never lost; the others are redacted and get the rule's
typed fields and time.

A body with more than MAX_REJECTED such lines is no shipper's batch (a wrong file, a
client speaking another format): it is refused as a whole, nothing of it indexed,
since a dead letter costs the collector a few KiB of memory however short its line
(a 4 MiB body of two-byte lines took 5.8 GB) and costs the dead-letter stream a document.

A body with more than MAX_SOURCES ``source`` lines is refused whole too: a shipper
sends one per container with lines in the batch, and each new container's fields and
routes cost the collector about 35 µs (100,000 of them once took 20 s).

The ingest API decodes a body in steps (:func:`decoding`, about steps.STEP_SECONDS each)
and answers other requests between two; the result is the same whatever the steps. So
does it set apart the lines of one `_id` (:func:`setting_apart`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeVar, cast

import msgspec
import orjson
from pydantic import ValidationError

from collector import native, steps
from collector.deadletter import Sender, same_id, unreadable_line
from collector.enrich import (
    Context,
    Doc,
    EncodedDoc,
    _source_fields,
    event_document,
    gap_document,
    log_document,
)
from collector.errors import BadRequest
from collector.parse import parse
from collector.parse.level import detect_level
from collector.rules.compiled import CompiledRule
from collector.rules.document import Tallies, fitted_document, ruled_document
from collector.rules.engine import Engine, Plan
from collector.wire import (
    Event,
    Gap,
    LineError,
    Log,
    LogFields,
    Source,
    cut_message,
    read_line,
)

_KINDS = "'source', 'log', 'event' or 'gap'"
_BOM = "\ufeff".encode()
# Lines of one body that may be dead-lettered: twice the shipper's default batch, all bad.
MAX_REJECTED = 10_000
# `source` lines in one body: a shipper sends one per container with lines in the batch.
MAX_SOURCES = 10_000
# Lines the Python path reads between two looks at the clock (10-100 µs each).
_PYTHON_STEP_LINES = 256


@dataclass(slots=True)
class Decoded:
    """Documents and per-line errors of one batch."""

    docs: list[Doc] = field(default_factory=list)
    dead_letters: list[Doc] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    received: int = 0
    # Log lines whose message was longer than Context.max_line_bytes, indexed cut there.
    truncated: int = 0
    # Source, event and gap lines whose free text was cut at the wire's bounds (by the
    # collector or their sender), per kind.
    texts_truncated: dict[str, int] = field(default_factory=dict)
    # What the parsing rules did: lines dropped, failures, masks put in, per rule.
    rules: Tallies = field(default_factory=Tallies)


def describe(exc: ValidationError) -> str:
    """The first problem of a validation error, naming the field."""
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    kind = err["type"]
    if kind == "json_invalid":
        # The line number is the caller's to give: drop the parser's "line 1".
        detail = (
            err["msg"].removeprefix("Invalid JSON: ").replace(" at line 1 column ", " at column ")
        )
        return f"not valid JSON: {detail}"
    if kind == "dict_type" and not loc:
        return "not a JSON object: each line must be one object"
    if kind == "union_tag_not_found":
        return f"field 'kind' is missing: every line needs one of {_KINDS}"
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag", ""))[:64]
        return f"field 'kind': must be {_KINDS}, not '{tag}'"
    if len(loc) >= 2:
        problem = _time_bound(loc[-1], kind, err["input"]) or err["msg"]
        article = "an" if loc[0][:1] in ("a", "e", "i", "o", "u") else "a"
        return f"field '{'.'.join(loc[1:])}' of {article} '{loc[0]}' line: {problem}"
    return f"field '{'.'.join(loc)}': {err['msg']}" if loc else err["msg"]


def _time_bound(name: str, kind: str, value: object) -> str | None:
    """What a time off the wire's bounds means, in dates (None for anything else)."""
    if name not in ("ts", "from_ts", "to_ts"):
        return None
    if kind == "less_than_equal":
        return (
            f"{value} ns is after 2262-04-11T23:47:16.854775807Z, the last instant that "
            "nanoseconds since 1970 in 64 bits (Elasticsearch's date_nanos) hold"
        )
    if kind == "greater_than_equal":
        return f"{value} ns is before 1970-01-01T00:00:00Z: times are nanoseconds since then"
    return None


def decode(
    body: bytes,
    ctx: Context,
    ingested: str,
    keep_original: bool = False,
    address: str | None = None,
) -> Decoded:
    """Validate, parse and enrich every line of `body`, sent from `address`, at once.

    :func:`decoding` in one step (its docstring says how); the ingest API decodes in
    steps, to answer other requests between them.
    """
    return steps.at_once(decoding(body, ctx, ingested, keep_original, address, seconds=None))


def decoding(
    body: bytes,
    ctx: Context,
    ingested: str,
    keep_original: bool = False,
    address: str | None = None,
    *,
    seconds: float | None,
) -> Generator[None, None, Decoded]:
    """Validate, parse and enrich every line of `body`, sent from `address`, in steps of
    about `seconds` each (None: one), yielding between two: the caller may do other work
    there (an event loop answering other requests; nothing here may change the body).
    The generator returns the result, the same whatever the steps: a later step knows
    the source lines of the earlier ones, and the dead letters are made at the end.
    A reload of the retention rules between two steps routes the lines after it by the
    new rules (the compiled path forgets the routes it had); parsing rules are read once
    per batch.

    With the compiled hot path installed (collector/native.py), it makes the documents
    of the lines it reads and hands every other line to the same per-line code as
    below, in its place: the documents are the same. Under parsing rules, the lines of a
    container whose plan is `direct` (no rule for it, nothing redacted: its lines are
    made exactly as without rules) stay on the compiled path, and so do the lines of a
    container one rule decides for that lack the rule's first literal (its `needle`; the
    others go to the rules). When the rules that decide for every line of a container
    are all written out (`plan.fasts`, one or several), it tries them in order as
    `Engine.first_fit` does, each applied as `fitted_document` applies it: the first
    that fits shapes the line there, a line none fits is made as without rules, and a
    line the rule's written-out way cannot decide (SLOW) or one with attributes of its
    own that a rule's pattern fits goes to the rules.
    """
    out = Decoded()
    # An editor's byte order mark would make the first line, a source line, unreadable,
    # and with it every line of its container.
    body = body.removeprefix(_BOM)
    engine = ctx.parsing.engine  # once per batch: a reload swaps it between batches
    rejected: list[_Rejected] = []
    hosts: set[str] = set()
    take = _lines(out, ctx, ingested, keep_original, engine, rejected, hosts)
    module = native.MODULE
    if module is not None:
        ruled = bool(engine)

        def handler(raw: bytes, number: int) -> tuple[int, tuple[Any, ...] | None] | None:
            source = take(raw, number)
            if source is None:
                return None
            if isinstance(source, int):  # its source line was rejected: no parts
                return (source, None) if 0 <= source < 2**64 else None
            if source.truncated:  # every line of it to `take`, which marks it truncated
                return source.src, None
            needle = None  # lines holding it go to `take`, for the rules
            fasts: tuple[CompiledRule, ...] = ()  # the written-out rules, tried there
            if ruled:
                plan = engine.plan(source, ctx)
                if not plan.direct:
                    if not (plan.fasts or plan.needle):
                        return source.src, None  # every line to `take`, for the rules
                    needle, fasts = plan.needle, plan.fasts
            parts = native.source_parts(
                raw, source, ctx, ingested, needle, engine.max_skew_ns, fasts
            )
            return source.src, parts

        walk = module.Batch(body, ctx.max_line_bytes)
        retention = ctx.retention.rules
        while not walk.step(out.docs, EncodedDoc, handler, detect_level, seconds):
            yield
            if ctx.retention.rules is not retention:  # reloaded: the parts' routes are old
                walk.forget_sources()
                retention = ctx.retention.rules
        out.received = walk.received
    else:
        lines = body.split(b"\n")
        clock = steps.Clock(seconds)
        received = 0
        for first in range(0, len(lines), _PYTHON_STEP_LINES):
            yield from clock.pause()
            for number, raw in enumerate(
                lines[first : first + _PYTHON_STEP_LINES], start=first + 1
            ):
                if not raw or raw.isspace():
                    continue
                received += 1
                take(raw, number)
        out.received = received
    out.dead_letters = _dead_letters(rejected, hosts, ctx, ingested, address)
    return out


def set_apart_same_ids(out: Decoded) -> None:
    """:func:`setting_apart` at once (tests; the ingest API sets apart in steps)."""
    steps.at_once(setting_apart(out, seconds=None))


def setting_apart(out: Decoded, *, seconds: float | None) -> Generator[None, None, None]:
    """Dead-letter each document whose `_id` an earlier one of the batch has with another
    text: Elasticsearch would answer 409 and the line be counted a duplicate, lost. (The
    ingest API does this before writing a batch; decode leaves the documents as read.)
    In steps of about `seconds` (steps.py): 200,000 documents took 30-80 ms."""
    docs = out.docs
    clock = steps.Clock(seconds)
    ids: set[str] = set()
    for start in range(0, len(docs), steps.PART):
        yield from clock.pause()
        ids.update(map(_ID, docs[start : start + steps.PART]))
    if len(ids) == len(docs):  # nearly always: 0.1 µs a line
        return
    first: dict[str, Doc] = {}
    kept = []
    for start in range(0, len(docs), steps.PART):
        yield from clock.pause()
        for doc in docs[start : start + steps.PART]:
            earlier = first.setdefault(doc.id, doc)
            if earlier is doc or earlier.original == doc.original:  # the same line twice
                kept.append(doc)
            else:
                out.dead_letters.append(same_id(doc))
    out.docs = kept


_ID = attrgetter("id")


def _lines(
    out: Decoded,
    ctx: Context,
    ingested: str,
    keep_original: bool,
    engine: Engine,
    rejected: list[_Rejected],
    hosts: set[str],
) -> Callable[[bytes, int], Source | int | None]:
    """The reader of one non-blank line of a batch: its document or error goes into
    `out`, a line it cannot read into `rejected`, a source line's host into `hosts`; a
    ``source`` line is returned (later lines refer to it), and the `src` of a source
    line that was rejected (later lines naming it are rejected too, not given to the
    container an earlier source line declared under that number)."""
    docs = out.docs
    sources: dict[int, Source] = {}
    ruled = bool(engine)  # once per batch: without rules a line pays one local test
    plans: dict[int, Plan] = {}  # per src: the rules its container's lines may get
    declared = [0]  # source lines so far
    refused: dict[int, int] = {}  # src -> number of its source line, which was rejected
    cut: set[int] = set()  # srcs whose source line was cut: their lines are marked truncated
    max_line = ctx.max_line_bytes
    # A message of this many characters or fewer is within max_line bytes (four bytes
    # a character at most): one comparison a line, no encoding.
    short = max_line // 4

    def take(raw: bytes, number: int) -> Source | int | None:
        try:
            line, bad_utf8 = read_line(raw)
        except ValidationError as exc:
            src = _reject(out, rejected, raw, number, describe(exc), engine, sources)
            if src is not None:
                sources.pop(src, None)
                refused[src] = number
            return src
        if type(line) is LogFields or type(line) is Log:  # nearly every line: inlined
            if len(line.message) > short:
                line = _cut(line, max_line, out)
            if cut and line.src in cut and not line.truncated:
                line = _marked(line)
            source = sources.get(line.src)
            if source is not None:
                if ruled:
                    plan = plans.get(line.src)
                    if plan is None:
                        plan = plans[line.src] = engine.plan(source, ctx)
                    if not plan.direct:  # else: as without rules, to the byte
                        parsed = None
                        if plan.needle:  # one rule: a line without its first literal skips it
                            parsed = parse(line.message, source.hints.parser, keep_original)
                            if plan.needle not in parsed.message:
                                if bad_utf8:
                                    parsed.flags.append("invalid_utf8")
                                docs.append(log_document(source, line, parsed, ctx, ingested))
                                return None
                            if plan.fast is not None and not parsed.attributes:
                                doc = fitted_document(
                                    engine, plan.fast, source, line, parsed, ctx, ingested, bad_utf8
                                )
                                if doc is not None:
                                    docs.append(doc)
                                    return None
                        doc = ruled_document(
                            engine,
                            out.rules,
                            source,
                            line,
                            ctx,
                            ingested,
                            keep_original,
                            bad_utf8,
                            plan,
                            parsed,
                        )
                        if doc is not None:
                            docs.append(doc)
                        return None
                parsed = parse(line.message, source.hints.parser, keep_original)
                if bad_utf8:
                    parsed.flags.append("invalid_utf8")
                docs.append(log_document(source, line, parsed, ctx, ingested))
                return None
        if isinstance(line, Source):
            declared[0] += 1
            if declared[0] > MAX_SOURCES:
                _too_many_sources(number)
            sources[line.src] = line
            hosts.add(line.host)
            plans.pop(line.src, None)
            refused.pop(line.src, None)
            if line.truncated:
                cut.add(line.src)
                _count_cut(out, "source")
            else:
                cut.discard(line.src)
            return line
        source = sources.get(line.src)
        if source is None:
            at = refused.get(line.src)
            unknown = (
                f"src {line.src} not declared by an earlier 'source' line"
                if at is None
                else f"src {line.src}: its 'source' line (line {at}) was rejected"
            )
            _reject(out, rejected, raw, number, unknown, engine, sources)
        else:
            if line.truncated:
                _count_cut(out, line.kind)
            elif line.src in cut:
                line = _marked(line)
            docs.append(_document(source, line, ctx, ingested, keep_original, bad_utf8))
        return None

    return take


def _count_cut(out: Decoded, kind: str) -> None:
    out.texts_truncated[kind] = out.texts_truncated.get(kind, 0) + 1


_Line = TypeVar("_Line", bound=LogFields | Log | Event | Gap)


def _marked(line: _Line) -> _Line:
    """`line` marked truncated: its container's name, image or labels were cut, and its
    document holds them."""
    return _replaced(line, truncated=True)


def _replaced(line: _Line, **changes: Any) -> _Line:
    """A copy of `line` with `changes`, whichever reader made it (msgspec or pydantic)."""
    if isinstance(line, LogFields):
        return msgspec.structs.replace(line, **changes)
    return cast("_Line", line.model_copy(update=changes))


def _cut(line: LogFields | Log, max_line: int, out: Decoded) -> LogFields | Log:
    """`line` with its message cut at `max_line` bytes and marked truncated, as the
    shipper cuts its own lines (a sender that cuts nothing may send a line too large for
    the node ever to index); `line` itself when its message is not longer."""
    message = cut_message(line.message, max_line)
    if message is None:
        return line
    out.truncated += 1
    return _replaced(line, message=message, truncated=True)


def _too_many_sources(number: int) -> None:
    raise BadRequest(
        f"more than {MAX_SOURCES} 'source' lines in one body (line {number} is one too "
        "many): a shipper sends one per container with lines in the batch; nothing of it "
        "was indexed: send the containers' lines in several batches"
    )


# A line that could not be read: its bytes (masked), number, why, and the container it
# names, where an earlier source line declared it.
_Rejected = tuple[bytes, int, str, Source | None]


def _reject(
    out: Decoded,
    rejected: list[_Rejected],
    raw: bytes,
    number: int,
    reason: str,
    engine: Engine,
    sources: dict[int, Source],
) -> int | None:
    """Name the line in `out`, keep it for its dead letter; the `src` it declares if it is
    a source line."""
    if len(out.errors) >= MAX_REJECTED:
        first = out.errors[0]
        raise BadRequest(
            f"more than {MAX_REJECTED} lines of the body are not valid wire lines (first: "
            f"line {first.line}: {first.error}); nothing of it was indexed: send logpipe "
            "wire lines (one JSON object per line, see collector/wire.py)"
        )
    kind, src = _claims(raw)
    named = sources.get(src) if src is not None and kind != "source" else None
    if engine.masks:  # a wire line that does not read may still carry a secret: mask it
        text = engine.masking.text(raw.decode("utf-8", "replace"), out.rules.redactions)
        raw = text.encode("utf-8", "surrogatepass")
    out.errors.append(LineError(line=number, error=reason))
    rejected.append((raw, number, reason, named))
    return src if kind == "source" else None


def _claims(raw: bytes) -> tuple[object, int | None]:
    """The `kind` and `src` a line that could not be read gives, as far as it reads."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(value, dict):
        return None, None
    src = value.get("src")
    return value.get("kind"), src if type(src) is int else None


def _dead_letters(
    rejected: list[_Rejected], hosts: set[str], ctx: Context, ingested: str, address: str | None
) -> list[Doc]:
    """The dead letters of the lines that could not be read, each naming its sender: the
    container it names, else the one host the body's source lines name (a shipper's)."""
    host = next(iter(hosts)) if len(hosts) == 1 else None
    letters = []
    for raw, number, reason, source in rejected:
        if source is None:
            sender = Sender(host, address=address)
        else:
            fields = _source_fields(source, ctx)
            sender = Sender(source.host, fields.container, fields.service, address)
        letters.append(unreadable_line(raw, number, reason, ingested, sender))
    return letters


def _document(
    source: Source,
    line: Log | LogFields | Event | Gap,
    ctx: Context,
    ingested: str,
    keep_original: bool,
    bad_utf8: bool,
) -> Doc:
    if isinstance(line, Log | LogFields):
        parsed = parse(line.message, source.hints.parser, keep_original)
        if bad_utf8:
            parsed.flags.append("invalid_utf8")
        return log_document(source, line, parsed, ctx, ingested)
    if isinstance(line, Event):
        return event_document(source, line, ctx, ingested)
    return gap_document(source, line, ctx, ingested)
