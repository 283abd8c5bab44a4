"""A log line's document as the rules make it: redacted, parsed, shaped, or dropped.

The line is redacted before any parser sees it (collector/rules/masking.py), so
``message``, ``event.original`` and the copy kept for the dead letters all hold the
mask. Typed values go under ``fields`` (mapped per name and type by the index template
that ``setup`` builds from the rules); Docker's time moves to ``event.created`` when the
line's own time becomes ``@timestamp`` (the ``_id`` stays Docker's, so exactly-once
delivery is unchanged); what went wrong is in ``logpipe.rule_failure`` and the tag
``rule_failure``. Shared sub-objects of the document are replaced, never changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from collector.enrich import Context, Doc, format_ns, log_document
from collector.parse import Parsed, parse
from collector.rules.compiled import CompiledRule, Shaped
from collector.rules.engine import Engine, Plan
from collector.rules.fused import SLOW
from collector.wire import Log, LogFields, Source

log = logging.getLogger("logpipe.collector.rules")

FAILURE_TAG = "rule_failure"
# What a line becomes should redaction itself fail: its text is never indexed unmasked.
WITHHELD = "[line withheld: redaction failed on it, see the collector's log]"


@dataclass(slots=True)
class Tallies:
    """What the rules did to one batch, per rule name (counted once per batch)."""

    dropped: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    redactions: dict[str, int] = field(default_factory=dict)


def ruled_document(
    engine: Engine,
    tallies: Tallies,
    source: Source,
    line: Log | LogFields,
    ctx: Context,
    ingested: str,
    keep_original: bool,
    bad_utf8: bool,
    plan: Plan | None = None,
    parsed: Parsed | None = None,
) -> Doc | None:
    """The document of a line as the rules make it, or None when a drop rule takes it.

    `plan` is the engine's plan for `source` when the caller has it at hand; `parsed`,
    the line parsed already (never when something is redacted: masks come first).
    """
    text = line.message
    masks = engine.masks
    try:
        if parsed is None or masks:
            if masks:
                text = engine.masking.text(text, tallies.redactions)
            parsed = parse(text, source.hints.parser, keep_original)
            if masks:  # what JSON escapes hid from the first pass
                engine.masking.parsed(parsed, tallies.redactions)
        if plan is None:
            plan = engine.plan(source, ctx)
        if plan.idle:  # redaction alone, for this container
            found = None
        else:
            choice = plan.fixed or plan.choice(parsed.level)
            found = engine.first_fit(choice, parsed, line.ts, tallies.redactions)
    except Exception:  # a bug in the rules must not cost the batch, nor leak a secret
        log.exception("parsing rules failed on a line; indexed without them")
        text = WITHHELD if masks else text
        parsed = parse(text)
        found = Shaped("", failures=["internal error in the parsing rules (logged)"])
    if bad_utf8:
        parsed.flags.append("invalid_utf8")
    if found is None:  # no rule for this line: the document it has without rules
        doc = log_document(source, line, parsed, ctx, ingested)
        doc.original = text
        return doc
    if isinstance(found, str):
        tallies.dropped[found] = tallies.dropped.get(found, 0) + 1
        return None
    doc = log_document(source, line, parsed, ctx, ingested)
    finish(doc.body, found)
    if found.failures:
        name = found.rule or "(label)"
        tallies.failures[name] = tallies.failures.get(name, 0) + 1
    if engine.rule_masks:
        rule = engine.by_name.get(found.rule)
        if rule is not None and rule.masks:
            text = rule.masking.text(text, {})  # counted already, in the message
    doc.original = text
    return doc


def fitted_document(
    engine: Engine,
    rule: CompiledRule,
    source: Source,
    line: Log | LogFields,
    parsed: Parsed,
    ctx: Context,
    ingested: str,
    bad_utf8: bool,
) -> Doc | None:
    """The document of a line its container's one written-out rule shapes by itself.

    None when that rule's written-out way cannot decide for the line (a failure to
    report, or a bug): `ruled_document` then makes it the general way. Only for a
    container whose one rule decides every line, with nothing redacted; `parsed` has no
    attributes of its own.
    """
    if rule.fast is None:
        return None
    try:
        fitted = rule.fit(parsed, line.ts, engine.max_skew_ns)
    except Exception:  # the general way logs it and tags the line
        return None
    if fitted is SLOW:
        return None
    if bad_utf8:
        parsed.flags.append("invalid_utf8")
    doc = log_document(source, line, parsed, ctx, ingested)
    if isinstance(fitted, Shaped):  # else (None) the pattern does not fit: no rule
        finish(doc.body, fitted)
    return doc


# The last time a rule took from a line, and its text.
_last_time: tuple[int, str] = (-1, "")

# The `logpipe` object of a line a rule shaped without failures, per (parser, rule): many
# documents share it, as they share the one without a rule (never changed once made).
_RULED: dict[tuple[str, str], dict[str, Any]] = {}


def finish(body: dict[str, Any], shaped: Shaped) -> None:
    """Add what `shaped` holds to the document `body` (made by enrich.log_document)."""
    logpipe: dict[str, Any] = body["logpipe"]
    if shaped.failures or len(logpipe) != 1 or not shaped.rule:  # not `{"parser": ...}`
        logpipe = dict(logpipe)
        if shaped.rule:
            logpipe["rule"] = shaped.rule
        if shaped.failures:
            logpipe["rule_failure"] = list(shaped.failures)
            body["tags"] = [*body.get("tags", ()), FAILURE_TAG]
    else:
        key = (logpipe["parser"], shaped.rule)
        shared = _RULED.get(key)
        if shared is None:
            if len(_RULED) >= 4096:
                _RULED.clear()
            shared = _RULED[key] = {**logpipe, "rule": shaped.rule}
        logpipe = shared
    body["logpipe"] = logpipe
    if shaped.fields:
        body["fields"] = shaped.fields
    ns = shaped.timestamp
    if ns is not None:
        global _last_time  # a one-entry cache, read and written here only
        last = _last_time  # read once: the time and its text always go together
        if ns != last[0]:  # lines in a row often share their own time (to the second)
            last = _last_time = (ns, format_ns(ns))
        body["event"] = {**body["event"], "created": body["@timestamp"]}
        body["@timestamp"] = last[1]
