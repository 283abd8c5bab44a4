"""Documents go to Elasticsearch flat (dotted names) and come back to readers nested: the
same fields, values and order either way."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from collector.bulk import encode
from collector.shape import flat, nested
from tests.collector.test_bulk import corpus_documents


def _without_empty(body: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in body.items():
        if type(value) is dict and key not in ("attributes", "labels"):
            value = _without_empty(value)
            if not value:
                continue
        out[key] = value
    return out


def test_every_document_goes_flat_and_comes_back_as_it_was() -> None:
    """Each corpus document (every parser, events, gaps, a dead letter) sent flat reads
    back equal, its fields in the same order, and the bytes sent are orjson of flat()."""
    docs = corpus_documents()
    for doc in docs:
        sent = orjson.loads(encode(doc).split(b"\n")[1])
        assert sent == flat(doc.body)
        assert not any(
            type(v) is dict for k, v in sent.items() if k not in ("attributes", "container.labels")
        )
        assert nested(sent) == _without_empty(doc.body)
        assert list(orjson.dumps(nested(sent))) == list(orjson.dumps(_without_empty(doc.body)))


def test_object_valued_fields_stay_objects_their_keys_untouched() -> None:
    """`attributes` and `container.labels` are flattened fields: their values stay objects,
    dots in their keys included; a rule's typed field keeps a dotted name whole."""
    body = {
        "container": {"id": "c", "labels": {"com.docker.compose.service": "web"}},
        "attributes": {"user.id": 7, "req": {"path": "/"}},
        "fields": {"latency.ms": 5, "n": 1},
        "event": {"dataset": "d"},
    }
    assert flat(body) == {
        "container.id": "c",
        "container.labels": {"com.docker.compose.service": "web"},
        "attributes": {"user.id": 7, "req": {"path": "/"}},
        "fields.latency.ms": 5,
        "fields.n": 1,
        "event.dataset": "d",
    }
    assert nested(flat(body)) == body


def test_a_nested_document_reads_as_it_is() -> None:
    """Indices made before version 5 hold nested documents: readers get them unchanged."""
    body = {"@timestamp": "t", "host": {"name": "h"}, "attributes": {"a.b": 1}}
    assert nested(body) is body


_names = st.text(st.sampled_from("abc"), min_size=1, max_size=3)
_leaf = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))
_objects = st.recursive(
    st.dictionaries(_names, _leaf, min_size=1, max_size=3),
    lambda inner: st.dictionaries(_names, st.one_of(_leaf, inner), min_size=1, max_size=3),
    max_leaves=12,
)


@given(_objects)
def test_flat_then_nested_is_the_document_for_any_nesting(body: dict[str, Any]) -> None:
    """Any nesting of objects (names without dots) survives the round trip, order too."""
    assert list(nested(flat(body)).items()) == list(_without_empty(body).items())
