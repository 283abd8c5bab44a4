"""The Kibana saved objects in dashboards/, checked as far as possible without a Kibana.

Structure: every line is a saved object, every reference resolves inside the files, every
field a search, panel, filter or control uses exists in our index template with a type its
aggregation accepts. Behaviour: each Lens panel, saved search and control is translated to
the Elasticsearch request Kibana would send and run on the real node over documents built
by the collector's own parse and enrich stages; each must return non-empty buckets.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from elasticsearch import Elasticsearch

from collector.config import load_config
from collector.enrich import Context, Doc, event_document, gap_document
from collector.kibana import read_saved_objects
from collector.rules.document import Tallies, ruled_document
from collector.rules.engine import ParsingRules, engine_of
from collector.shape import nested
from collector.templates import INDEX_PATTERNS, TEMPLATE_NAME, index_template, mappings
from collector.wire import Event, Gap, Log, Source

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
# The parsing rules of docs/rules.md: panels may use their typed fields, which `setup`
# maps when run with them (fields.request_time of the rule nginx_timed).
EXAMPLE_RULES = engine_of(load_config(DASHBOARDS.parent / "docs" / "examples" / "rules.yaml"))
DATA_VIEW_ID = "logpipe-logs"
# Kibana 8.10+ and 9.x import objects of these versions and migrate them forward; a newer
# version would make older Kibanas refuse the import.
CORE_MIGRATION_VERSION = "8.8.0"
MAX_TYPE_VERSION = {
    "index-pattern": "8.0.0",
    "search": "8.0.0",
    "lens": "8.9.0",
    "dashboard": "8.9.0",
}

NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
DATES = {"date", "date_nanos"}
# "flattened.key" stands for a key inside a flattened field: Kibana sees it as a keyword.
AGGREGATABLE = {"keyword", "ip", "boolean", "flattened.key"} | NUMERIC | DATES
ACCEPTS: dict[str, set[str]] = {
    "terms": AGGREGATABLE - DATES,
    "date_histogram": DATES,
    "unique_count": AGGREGATABLE,
    "count": AGGREGATABLE | {"text", "flattened"},
    **dict.fromkeys(["sum", "average", "min", "max", "median", "percentile"], NUMERIC),
    "options_list": {"keyword", "ip", "boolean", "flattened.key"} | NUMERIC,
    "sort": AGGREGATABLE,
    "column": AGGREGATABLE | {"text", "flattened"},
    "phrase": AGGREGATABLE - DATES,
    "range": NUMERIC | DATES | {"ip"},
    "exists": AGGREGATABLE | {"text", "flattened"},
    "query": AGGREGATABLE | {"text"},
    "format:duration": NUMERIC,
    "format:number": NUMERIC,
    "format:bytes": NUMERIC,
}
LENS_DATA_TYPES = {"string": {"keyword", "flattened.key"}, "number": NUMERIC, "ip": {"ip"}}
LUCENE_FIELD = re.compile(r"(?<![\w.@])([A-Za-z_@][\w.@]*)\s*:")
QUERY_DSL_FIELD_KEYS = {"match_phrase", "term", "terms", "range", "match"}


# ---- reading the objects --------------------------------------------------------------
def load_objects() -> list[dict[str, Any]]:
    """Every saved object of every file, in file order."""
    read_saved_objects(DASHBOARDS)  # the import client must accept the files too
    return [
        json.loads(line)
        for path in sorted(DASHBOARDS.glob("*.ndjson"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


OBJECTS = load_objects()


def of_type(kind: str) -> list[dict[str, Any]]:
    """The objects of one saved-object type."""
    return [o for o in OBJECTS if o["type"] == kind]


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    """The parsed searchSourceJSON of a search or dashboard."""
    return dict(json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]))


def lens_layers(obj: dict[str, Any]) -> dict[str, Any]:
    """The form-based layers of a Lens object, by layer id."""
    return dict(obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"])


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The parsed panelsJSON of a dashboard."""
    return list(json.loads(dashboard["attributes"]["panelsJSON"]))


def controls(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's controls, by control id."""
    return dict(json.loads(dashboard["attributes"]["controlGroupInput"]["panelsJSON"]))


def version_tuple(version: str) -> tuple[int, ...]:
    """'8.9.0' -> (8, 9, 0)."""
    return tuple(int(part) for part in version.split("."))


# ---- the template's field types -------------------------------------------------------
def field_type(path: str) -> str | None:
    """The mapped type of a dotted field in the template `setup` installs with the example
    rules, 'flattened.key' inside a flattened one."""
    props: dict[str, Any] = mappings(EXAMPLE_RULES.fields)["properties"]  # dotted leaves
    if path in props:
        return str(props[path]["type"])
    for name, spec in props.items():
        if spec["type"] == "flattened" and path.startswith(name + "."):
            return "flattened.key"
    return None


def field_uses(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, use, where) for every field the object uses."""
    kind = obj["type"]
    if kind == "index-pattern":
        return _data_view_uses(obj)
    if kind == "search":
        return _search_uses(obj)
    if kind == "lens":
        return _lens_uses(obj)
    if kind == "dashboard":
        return _dashboard_uses(obj)
    return []


def _data_view_uses(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    attrs = obj["attributes"]
    uses = [(attrs["timeFieldName"], "sort", "timeFieldName")]
    for name, fmt in json.loads(attrs.get("fieldFormatMap", "{}")).items():
        uses.append((name, f"format:{fmt['id']}", "fieldFormatMap"))
    uses += [(name, "column", "fieldAttrs") for name in json.loads(attrs.get("fieldAttrs", "{}"))]
    return uses


def _search_uses(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    attrs = obj["attributes"]
    uses = [(c, "column", "columns") for c in attrs["columns"]]
    uses += [(field, "sort", "sort") for field, _ in attrs["sort"]]
    return uses + _filter_uses(search_source(obj)["filter"])


def _filter_uses(pills: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    uses = []
    for pill in pills:
        kind = pill["meta"]["type"]
        if kind != "custom":
            use = "phrase" if kind in ("phrase", "phrases") else kind
            uses.append((pill["meta"]["key"], use, f"filter pill on {pill['meta']['key']}"))
        uses += [(f, "query", "filter query") for f in dsl_fields(pill["query"])]
    return uses


def dsl_fields(query: Any) -> set[str]:
    """Every field named in a query DSL fragment."""
    found: set[str] = set()
    if isinstance(query, dict):
        for key, value in query.items():
            if key in QUERY_DSL_FIELD_KEYS and isinstance(value, dict):
                found.update(value)
            elif key == "exists":
                found.add(value["field"])
            else:
                found |= dsl_fields(value)
    elif isinstance(query, list):
        for item in query:
            found |= dsl_fields(item)
    return found


def _lens_uses(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    uses = _filter_uses(obj["attributes"]["state"]["filters"])
    for layer in lens_layers(obj).values():
        for col_id, col in layer["columns"].items():
            field, op = col.get("sourceField"), col["operationType"]
            if field and field != "___records___":
                uses.append((field, op, f"column {col_id}"))
            queries = [f["input"]["query"] for f in col.get("params", {}).get("filters", [])]
            queries += [col["filter"]["query"]] if "filter" in col else []
            for q in queries:
                uses += [(f, "query", f"query {q!r}") for f in LUCENE_FIELD.findall(q)]
    return uses


def _dashboard_uses(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    uses = [
        (c["explicitInput"]["fieldName"], "options_list", f"control {cid}")
        for cid, c in controls(obj).items()
    ]
    return uses + _filter_uses(search_source(obj)["filter"])


def field_problems(obj: dict[str, Any]) -> list[str]:
    """Fields the object uses that the template lacks or types wrongly for the use."""
    problems = []
    for field, use, where in field_uses(obj):
        mapped = field_type(field)
        if mapped is None:
            problems.append(f"{obj['id']} {where}: field {field} is not in the template")
        elif mapped not in ACCEPTS[use]:
            problems.append(f"{obj['id']} {where}: {use} cannot use {field} ({mapped})")
    if obj["type"] == "lens":
        problems += _lens_data_type_problems(obj)
    return problems


def _lens_data_type_problems(obj: dict[str, Any]) -> list[str]:
    problems = []
    for layer in lens_layers(obj).values():
        for col_id, col in layer["columns"].items():
            field = col.get("sourceField")
            allowed = LENS_DATA_TYPES.get(col["dataType"])
            if col["operationType"] == "terms" and allowed and field_type(field) not in allowed:
                problems.append(
                    f"{obj['id']} column {col_id}: dataType {col['dataType']} vs {field}"
                )
    return problems


# ---- structure ------------------------------------------------------------------------
def test_every_line_is_a_saved_object_that_kibana_8_and_9_import() -> None:
    """Each object has type, id, attributes, references and versions Kibana 8.10+ and 9 accept."""
    assert {o["type"] for o in OBJECTS} == {"index-pattern", "search", "lens", "dashboard"}
    ids = [(o["type"], o["id"]) for o in OBJECTS]
    assert len(ids) == len(set(ids)), "duplicate saved object ids"
    for obj in OBJECTS:
        assert isinstance(obj["attributes"], dict), obj["id"]
        assert obj["attributes"]["title"], obj["id"]
        assert obj["id"].startswith("logpipe-"), f"{obj['id']}: ids are stable and readable"
        for ref in obj["references"]:
            assert set(ref) == {"type", "id", "name"}, (obj["id"], ref)
        assert obj["coreMigrationVersion"] == CORE_MIGRATION_VERSION, obj["id"]
        version = version_tuple(obj["typeMigrationVersion"])
        assert version <= version_tuple(MAX_TYPE_VERSION[obj["type"]]), obj["id"]


def test_every_reference_resolves_inside_the_files() -> None:
    """References point at shipped objects, and every panel, layer and control has its own."""
    shipped = {(o["type"], o["id"]) for o in OBJECTS}
    for obj in OBJECTS:
        names = {r["name"]: (r["type"], r["id"]) for r in obj["references"]}
        assert len(names) == len(obj["references"]), f"{obj['id']}: duplicate reference names"
        for name, target in names.items():
            assert target in shipped, f"{obj['id']}: reference {name} -> {target} is not shipped"
        for needed in _needed_reference_names(obj):
            assert needed in names, f"{obj['id']}: no reference named {needed}"


def _needed_reference_names(obj: dict[str, Any]) -> list[str]:
    if obj["type"] == "search":
        return [search_source(obj)["indexRefName"]]
    if obj["type"] == "lens":
        return [f"indexpattern-datasource-layer-{layer}" for layer in lens_layers(obj)]
    if obj["type"] == "dashboard":
        refs = [f"{p['panelIndex']}:{p['panelRefName']}" for p in panels(obj)]
        return refs + [f"controlGroup_{cid}:optionsListDataView" for cid in controls(obj)]
    return []


def test_dashboards_have_the_panels_and_controls_the_issue_asks_for() -> None:
    """The overview and HTTP dashboards exist, filter by host, service and container."""
    dashboards = {d["id"]: d for d in of_type("dashboard")}
    assert set(dashboards) == {"logpipe-overview", "logpipe-http"}
    for dashboard in dashboards.values():
        fields = [c["explicitInput"]["fieldName"] for c in controls(dashboard).values()]
        assert fields == ["host.name", "service.name", "container.name"]
        grid = [p["gridData"] for p in panels(dashboard)]
        assert all(g["x"] + g["w"] <= 48 for g in grid), "a panel sticks out of the 48 columns"
    searches = {s["id"]: s["attributes"]["columns"] for s in of_type("search")}
    assert searches["logpipe-search-logs"] == [
        "host.name",
        "service.name",
        "container.name",
        "log.level",
        "message",
    ]
    assert {"logpipe-search-errors", "logpipe-search-lifecycle", "logpipe-search-gaps"} <= set(
        searches
    )
    lens = {o["id"] for o in of_type("lens")}
    assert "logpipe-lens-rule-request-time" in lens, "the panel over a rule's typed field"
    [data_view] = of_type("index-pattern")
    assert data_view["attributes"]["title"] == ",".join(INDEX_PATTERNS)
    assert data_view["attributes"]["timeFieldName"] == "@timestamp"


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["id"])
def test_every_field_used_exists_in_the_template_with_a_fitting_type(obj: dict[str, Any]) -> None:
    """Fields of columns, filters, queries, controls and formats are mapped and fit their use."""
    assert field_problems(obj) == []


def test_field_check_rejects_unmapped_fields_and_unfit_types() -> None:
    """The field check is not vacuous: terms on text and an unknown field are reported."""
    [lens] = [o for o in of_type("lens") if o["id"] == "logpipe-lens-top-services-errors"]
    broken = json.loads(json.dumps(lens))
    columns = next(iter(lens_layers(broken).values()))["columns"]
    columns["k"]["sourceField"] = "message"
    columns["n"] = {**columns["n"], "filter": {"query": "no.such.field:1", "language": "lucene"}}
    problems = field_problems(broken)
    assert any("terms cannot use message (text)" in p for p in problems), problems
    assert any("no.such.field is not in the template" in p for p in problems), problems


# ---- queries on the real node ----------------------------------------------------------
def _now_ns() -> int:
    return time.time_ns() - 60 * 1_000_000_000


# nginx's combined format plus $request_time: the example rule nginx_timed types it.
NOW = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(time.time() - 60))
ACCESS = "{ip} - - [" + NOW + '] "{method} {url} HTTP/1.1" {status} 512 "-" "curl/8.5.0" "-" {secs}'
LINES: dict[str, list[tuple[Literal["stdout", "stderr"], str]]] = {
    "web": [
        ("stdout", ACCESS.format(ip=ip, method=m, url=u, status=s, secs=t))
        for ip, m, u, s, t in [
            ("10.0.0.1", "GET", "/", 200, "0.004"),
            ("10.0.0.2", "GET", "/api/orders?id=3", 200, "0.120"),
            ("10.0.0.2", "POST", "/api/orders", 201, "0.250"),
            ("10.0.0.3", "GET", "/old", 301, "0.001"),
            ("10.0.0.4", "GET", "/missing", 404, "0.002"),
            ("10.0.0.1", "GET", "/api/orders?id=9", 500, "1.500"),
            ("2001:db8::1", "GET", "/api/orders", 503, "2.000"),
        ]
    ],
    "api": [
        ("stdout", '{"level":"info","msg":"order created","order":7}'),
        ("stdout", '{"level":"warn","msg":"slow query","ms":900}'),
        ("stderr", '{"level":"error","msg":"payment failed","order":7}'),
        ("stderr", '{"level":"fatal","msg":"database unreachable"}'),
    ],
    "worker": [
        ("stdout", 'ts=2026-11-27T21:00:00Z level=info msg="job done" job=42'),
        ("stderr", "ERROR job 43 failed: timeout"),
        ("stdout", "DEBUG polling queue"),
    ],
}
CONTAINERS = [("host-a", "web", "web-1"), ("host-a", "api", "api-1"), ("host-b", "api", "api-2")]
CONTAINERS += [("host-b", "worker", "worker-1")]
EVENTS = [("start", None), ("die", 0), ("die", 137), ("oom", None), ("restart", None)]


def realistic_documents(run: str) -> list[Doc]:
    """Log lines, lifecycle events and gaps of several hosts, services and containers.

    Log lines go through the example parsing rules, as a collector loaded with them does.
    """
    ctx = Context(
        dataset=f"dashboards.{run}", namespace="default", parsing=ParsingRules(EXAMPLE_RULES)
    )
    ingested = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ts = _now_ns()
    docs: list[Doc] = []
    for n, (host, service, name) in enumerate(CONTAINERS):
        source = Source(
            kind="source",
            src=n,
            host=f"{host}-{run}",
            container_id=uuid.uuid4().hex * 2,
            container_name=f"{name}-{run}",
            image=f"example/{service}:1.0",
            labels={"com.docker.compose.service": service, "com.docker.compose.project": "shop"},
        )
        for i, (stream, message) in enumerate(LINES[service]):
            log = Log(kind="log", src=n, stream=stream, ts=ts + i * 1000, message=message)
            doc = ruled_document(EXAMPLE_RULES, Tallies(), source, log, ctx, ingested, False, False)
            assert doc is not None
            docs.append(doc)
        for i, (action, code) in enumerate(EVENTS):
            event = Event(kind="event", src=n, ts=ts + i * 7, action=action, exit_code=code)
            docs.append(event_document(source, event, ctx, ingested))
        gap = Gap(
            kind="gap",
            src=n,
            stream="stdout",
            from_ts=ts - 10**9,
            to_ts=ts,
            estimated_lines=40 + n,
            reason="log file rotated before it was read",
        )
        docs.append(gap_document(source, gap, ctx, ingested))
    return docs


@pytest.fixture(scope="module")
def indexed(es: Elasticsearch, template: None) -> str:
    """The index expression of this run's data streams, filled through _bulk (op_type create).

    The template is the one `setup --config docs/examples/rules.yaml` installs.
    """
    es.indices.put_index_template(name=TEMPLATE_NAME, **index_template(fields=EXAMPLE_RULES.fields))
    docs = realistic_documents("t" + uuid.uuid4().hex[:10])
    operations: list[dict[str, Any]] = []
    for doc in docs:
        operations += [{"create": {"_index": doc.stream, "_id": doc.id}}, doc.body]
    resp = es.bulk(operations=operations, refresh=True)
    assert not resp["errors"], [i for i in resp["items"] if i["create"].get("error")][:3]
    return ",".join(sorted({doc.stream for doc in docs}))


TIME_RANGE = {"range": {"@timestamp": {"gte": "now-24h", "lte": "now"}}}


def pill_clauses(pills: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(filter, must_not) clauses of enabled filter pills, as Kibana builds them."""
    keep = [p for p in pills if not p["meta"].get("disabled")]
    return (
        [p["query"] for p in keep if not p["meta"].get("negate")],
        [p["query"] for p in keep if p["meta"].get("negate")],
    )


def query_clause(query: dict[str, str]) -> list[dict[str, Any]]:
    """A Lucene query as Kibana sends it; KQL only when empty (our objects use no other)."""
    if not query["query"]:
        return []
    assert query["language"] == "lucene", f"no KQL translation here: {query}"
    return [{"query_string": {"query": query["query"], "analyze_wildcard": True}}]


def bool_query(pills: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """The whole query of a panel or search within the dashboards' default time range."""
    must, must_not = pill_clauses(pills)
    return {"bool": {"filter": [TIME_RANGE, *must, *query_clause(query)], "must_not": must_not}}


def metric_agg(col: dict[str, Any]) -> dict[str, Any] | None:
    """The Elasticsearch aggregation of a Lens metric column (None: the bucket's doc_count)."""
    op, field = col["operationType"], col.get("sourceField")
    simple = {"unique_count": "cardinality", "sum": "sum", "average": "avg", "min": "min"}
    simple["max"] = "max"
    agg: dict[str, Any] | None
    if op == "count":
        agg = None if field == "___records___" else {"value_count": {"field": field}}
    elif op in simple:
        agg = {simple[op]: {"field": field}}
    elif op in ("median", "percentile"):
        pct = 50 if op == "median" else col["params"]["percentile"]
        agg = {"percentiles": {"field": field, "percents": [pct]}}
    else:
        raise AssertionError(f"no translation for Lens operation {op}")
    if "filter" in col:
        inner = {"aggs": {"v": agg}} if agg else {}
        return {"filter": query_clause(col["filter"])[0], **inner}
    return agg


def bucket_agg(col: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    """The Elasticsearch aggregation of a Lens bucket column."""
    op, params = col["operationType"], col.get("params", {})
    if op == "date_histogram":
        return {"date_histogram": {"field": col["sourceField"], "fixed_interval": "1m"}}
    if op == "terms":
        order_col = columns[params["orderBy"]["columnId"]]
        assert order_col["operationType"] == "count", "terms ordered by a count only"
        assert "filter" not in order_col, "terms ordered by an unfiltered count only"
        order = {"_count": params["orderDirection"]}
        return {"terms": {"field": col["sourceField"], "size": params["size"], "order": order}}
    if op == "filters":
        named = {f["label"]: query_clause(f["input"])[0] for f in params["filters"]}
        return {"filters": {"filters": named}}
    raise AssertionError(f"no translation for Lens bucket operation {op}")


def lens_request(obj: dict[str, Any]) -> dict[str, Any]:
    """The search body equivalent to one Lens panel: nested buckets, then metrics."""
    state = obj["attributes"]["state"]
    [layer] = lens_layers(obj).values()
    cols = layer["columns"]
    order = layer["columnOrder"]
    aggs: dict[str, Any] = {}
    for cid in order:
        if not cols[cid]["isBucketed"] and (agg := metric_agg(cols[cid])) is not None:
            aggs[f"m_{cid}"] = agg
    for cid in reversed([c for c in order if cols[c]["isBucketed"]]):
        aggs = {f"b_{cid}": {**bucket_agg(cols[cid], cols), "aggs": aggs}}
    return {"size": 0, "query": bool_query(state["filters"], state["query"]), "aggs": aggs}


def leaf_rows(aggs: dict[str, Any], doc_count: int) -> list[tuple[int, dict[str, Any]]]:
    """(doc_count, metrics) of every innermost bucket that holds documents."""
    bucket_keys = [k for k in aggs if k.startswith("b_")]
    if not bucket_keys:
        return [(doc_count, aggs)] if doc_count else []
    buckets = aggs[bucket_keys[0]]["buckets"]
    values = buckets.values() if isinstance(buckets, dict) else buckets
    return [row for b in values for row in leaf_rows(b, b["doc_count"])]


def metric_value(result: dict[str, Any]) -> float | None:
    """The number one metric aggregation answered."""
    value: float | None  # the JSON of a number, or null
    if "values" in result:
        value = next(iter(result["values"].values()))
    elif "v" in result:
        value = metric_value(result["v"])
    elif "value" in result:
        value = result["value"]
    else:
        value = result.get("doc_count")
    return value


LENS = of_type("lens")
SEARCHES = of_type("search")


@pytest.mark.integration
@pytest.mark.alone  # `indexed` rewrites the shared node's logpipe template
@pytest.mark.parametrize("obj", LENS, ids=lambda o: o["id"])
def test_lens_panel_query_returns_buckets_on_indexed_data(
    es: Elasticsearch, indexed: str, obj: dict[str, Any]
) -> None:
    """The panel's aggregation runs on the real node and every metric has a value somewhere."""
    resp = es.search(index=indexed, **lens_request(obj))
    rows = leaf_rows(resp.get("aggregations", {}), resp["hits"]["total"]["value"])
    assert rows, f"{obj['id']}: no bucket holds documents"
    [layer] = lens_layers(obj).values()
    for cid, col in layer["columns"].items():
        if col["isBucketed"] or metric_agg(col) is None:
            continue
        values = [metric_value(metrics[f"m_{cid}"]) for _, metrics in rows]
        assert any(v for v in values), f"{obj['id']}: metric {cid} is empty in every bucket"


@pytest.mark.integration
@pytest.mark.alone  # `indexed` rewrites the shared node's logpipe template
@pytest.mark.parametrize("obj", SEARCHES, ids=lambda o: o["id"])
def test_saved_search_finds_documents_with_every_column(
    es: Elasticsearch, indexed: str, obj: dict[str, Any]
) -> None:
    """The saved search's filters match documents, and each of its columns has values."""
    source = search_source(obj)
    sort = [{field: direction} for field, direction in obj["attributes"]["sort"]]
    query = bool_query(source["filter"], source["query"])
    resp = es.search(index=indexed, query=query, sort=sort, size=100)
    hits = [nested(h["_source"]) for h in resp["hits"]["hits"]]
    assert hits, f"{obj['id']}: no documents match"
    for column in obj["attributes"]["columns"]:
        assert any(_get(h, column) is not None for h in hits), f"{obj['id']}: {column} empty"


def _get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.mark.integration
@pytest.mark.alone  # `indexed` rewrites the shared node's logpipe template
def test_saved_searches_select_the_documents_they_are_named_for(
    es: Elasticsearch, indexed: str
) -> None:
    """Errors hold only error/fatal lines, lifecycle only events, gaps only gap events."""
    expect: dict[str, Callable[[dict[str, Any]], bool]] = {
        "logpipe-search-errors": lambda d: _get(d, "log.level") in ("error", "fatal"),
        "logpipe-search-lifecycle": lambda d: (
            _get(d, "event.kind") == "event" and _get(d, "event.action") != "gap"
        ),
        "logpipe-search-gaps": lambda d: "gap" in d["tags"],
        "logpipe-search-logs": lambda d: _get(d, "event.kind") is None,
        "logpipe-search-rule-requests": lambda d: _get(d, "logpipe.rule") == "nginx_timed",
    }
    for obj in SEARCHES:
        if obj["id"] not in expect:
            continue
        source = search_source(obj)
        resp = es.search(
            index=indexed, query=bool_query(source["filter"], source["query"]), size=500
        )
        docs = [nested(h["_source"]) for h in resp["hits"]["hits"]]
        assert docs, obj["id"]
        assert all(expect[obj["id"]](d) for d in docs), obj["id"]


@pytest.mark.integration
@pytest.mark.alone  # `indexed` rewrites the shared node's logpipe template
@pytest.mark.parametrize("dashboard", of_type("dashboard"), ids=lambda o: o["id"])
def test_dashboard_controls_offer_options(
    es: Elasticsearch, indexed: str, dashboard: dict[str, Any]
) -> None:
    """Each options-list control's terms aggregation offers at least two values to pick."""
    for cid, control in controls(dashboard).items():
        field = control["explicitInput"]["fieldName"]
        resp = es.search(
            index=indexed,
            size=0,
            query=bool_query(
                search_source(dashboard)["filter"], {"query": "", "language": "kuery"}
            ),
            aggs={"options": {"terms": {"field": field, "size": 10}}},
        )
        keys = [b["key"] for b in resp["aggregations"]["options"]["buckets"]]
        assert len(keys) >= 2, f"{dashboard['id']} control {cid} on {field}: {keys}"
