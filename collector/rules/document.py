"""A document as a rule shaped it: typed fields, the application's time, the rule's name.

Typed values go under ``fields`` (mapped per name and type by the index template that
``setup`` builds from the rules); Docker's time moves to ``event.created`` when the
line's own time becomes ``@timestamp`` (the ``_id`` stays Docker's, so exactly-once
delivery is unchanged); what went wrong is in ``logpipe.rule_failure`` and the tag
``rule_failure``. Shared sub-objects of the document are replaced, never changed.
"""

from __future__ import annotations

from typing import Any

from collector.enrich import format_ns
from collector.rules.compiled import Shaped

FAILURE_TAG = "rule_failure"


def finish(body: dict[str, Any], shaped: Shaped) -> None:
    """Add what `shaped` holds to the document `body` (made by enrich.log_document)."""
    logpipe = dict(body["logpipe"])
    if shaped.rule:
        logpipe["rule"] = shaped.rule
    if shaped.failures:
        logpipe["rule_failure"] = shaped.failures
        body["tags"] = [*body.get("tags", ()), FAILURE_TAG]
    body["logpipe"] = logpipe
    if shaped.fields:
        body["fields"] = shaped.fields
    if shaped.timestamp is not None:
        body["event"] = {**body["event"], "created": body["@timestamp"]}
        body["@timestamp"] = format_ns(shaped.timestamp)
