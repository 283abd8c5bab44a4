"""The Kibana saved-objects import client, against a small stand-in for Kibana's HTTP API."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BodyPartReader, web

from collector import kibana as kibana_module
from collector.errors import KibanaError, SetupError
from collector.kibana import KibanaSettings, import_saved_objects, read_saved_objects

DATA_VIEW = {
    "type": "index-pattern",
    "id": "logpipe-logs",
    "attributes": {"title": "logs-*", "timeFieldName": "@timestamp"},
    "references": [],
}
DASHBOARD = {
    "type": "dashboard",
    "id": "logpipe-overview",
    "attributes": {"title": "logpipe: overview", "panelsJSON": "[]"},
    "references": [{"type": "index-pattern", "id": "logpipe-logs", "name": "x"}],
}
AVAILABLE = {"version": {"number": "9.2.0"}, "status": {"overall": {"level": "available"}}}


@dataclass
class Recorded:
    """One request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    parts: list[tuple[str | None, str | None, str | None, bytes]] = field(default_factory=list)


class FakeKibana:
    """Answers like Kibana: /api/status while starting, and the saved-objects import."""

    def __init__(self) -> None:
        self.statuses: list[tuple[int, Any]] = [(200, AVAILABLE)]
        self.import_answer: tuple[int, Any] | None = None
        self.requests: list[Recorded] = []
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}

    def app(self) -> web.Application:
        """The aiohttp application serving both endpoints, in the default space or another."""
        app = web.Application()
        for prefix in ("", "/s/{space}"):
            app.router.add_get(prefix + "/api/status", self.status)
            app.router.add_post(prefix + "/api/saved_objects/_import", self.import_objects)
        return app

    async def status(self, request: web.Request) -> web.Response:
        """Serve the next scripted status answer; the last one repeats."""
        self.requests.append(_record(request))
        code, body = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(body, str):
            return web.Response(status=code, text=body)
        return web.json_response(body, status=code)

    async def import_objects(self, request: web.Request) -> web.Response:
        """Store the objects of the `file` part, refusing existing ones unless overwrite."""
        rec = _record(request)
        reader = await request.multipart()
        async for part in reader:
            assert isinstance(part, BodyPartReader), part  # a flat form, no nested parts
            rec.parts.append(
                (part.name, part.filename, part.headers.get("Content-Type"), await part.read())
            )
        self.requests.append(rec)
        if self.import_answer is not None:
            return web.json_response(self.import_answer[1], status=self.import_answer[0])
        return web.json_response(self._store(rec))

    def _store(self, rec: Recorded) -> dict[str, Any]:
        objects = [json.loads(line) for line in rec.parts[0][3].splitlines() if line.strip()]
        overwrite = rec.query.get("overwrite") == "true"
        errors = [
            {"id": o["id"], "type": o["type"], "title": "", "error": {"type": "conflict"}}
            for o in objects
            if (o["type"], o["id"]) in self.stored and not overwrite
        ]
        if errors:
            return {"success": False, "successCount": 0, "errors": errors}
        self.stored.update({(o["type"], o["id"]): o for o in objects})
        return {"success": True, "successCount": len(objects)}

    @property
    def imports(self) -> list[Recorded]:
        """The import requests received."""
        return [r for r in self.requests if r.path.endswith("/_import")]


def _record(request: web.Request) -> Recorded:
    return Recorded(request.method, request.path, dict(request.query), dict(request.headers))


@pytest.fixture
async def kibana() -> AsyncIterator[tuple[FakeKibana, str]]:
    """A running stand-in on a free port, and its URL."""
    fake = FakeKibana()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield fake, f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
def objects_dir(tmp_path: Path) -> Path:
    """A folder with two NDJSON files, the dashboard's file sorting first."""
    (tmp_path / "a-dashboard.ndjson").write_text(json.dumps(DASHBOARD) + "\n")
    (tmp_path / "b-data-view.ndjson").write_text("\n" + json.dumps(DATA_VIEW) + "\n\n")
    return tmp_path


def _settings(url: str, **kw: Any) -> KibanaSettings:
    return KibanaSettings(url=url, poll_seconds=0.01, progress_seconds=0, **kw)


async def test_waits_for_kibana_then_imports_every_object_in_one_multipart_request(
    kibana: tuple[FakeKibana, str], objects_dir: Path
) -> None:
    """Import waits out 503s with progress messages, then posts all files as one `file` part."""
    fake, url = kibana
    fake.statuses = [(503, "Kibana server is not ready yet"), (503, "not ready"), (200, AVAILABLE)]
    said: list[str] = []

    result = await import_saved_objects(_settings(url), objects_dir, said.append)

    assert (result.kibana_version, result.imported) == ("9.2.0", 2)
    assert any("waiting for Kibana" in m and "503" in m for m in said)
    [rec] = fake.imports
    assert (rec.method, rec.path, rec.query) == (
        "POST",
        "/api/saved_objects/_import",
        {"overwrite": "true"},
    )
    assert rec.headers["kbn-xsrf"] == "true"
    assert rec.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    [(name, filename, content_type, body)] = rec.parts
    assert (name, filename, content_type) == ("file", "logpipe.ndjson", "application/ndjson")
    assert [json.loads(line) for line in body.splitlines()] == [DASHBOARD, DATA_VIEW]


async def test_importing_twice_overwrites_instead_of_conflicting(
    kibana: tuple[FakeKibana, str], objects_dir: Path
) -> None:
    """A second run replaces the objects (overwrite=true), so setup can run at every start."""
    fake, url = kibana
    await import_saved_objects(_settings(url), objects_dir)
    result = await import_saved_objects(_settings(url), objects_dir)
    assert result.imported == 2
    assert set(fake.stored) == {
        ("dashboard", "logpipe-overview"),
        ("index-pattern", "logpipe-logs"),
    }


async def test_refused_object_is_named_with_kibanas_reason(
    kibana: tuple[FakeKibana, str], objects_dir: Path
) -> None:
    """A `success: false` answer raises KibanaError naming each refused object and why."""
    fake, url = kibana
    fake.import_answer = (
        200,
        {
            "success": False,
            "successCount": 1,
            "errors": [
                {
                    "id": "logpipe-overview",
                    "type": "dashboard",
                    "title": "logpipe: overview",
                    "meta": {"title": "logpipe: overview", "icon": "dashboardApp"},
                    "error": {
                        "type": "missing_references",
                        "references": [{"type": "index-pattern", "id": "nope"}],
                    },
                },
                {
                    "id": "logpipe-http",
                    "type": "dashboard",
                    "meta": {"title": "logpipe: HTTP"},
                    "error": {"type": "unknown", "message": "bad panelsJSON", "statusCode": 400},
                },
            ],
        },
    )
    with pytest.raises(KibanaError) as info:
        await import_saved_objects(_settings(url), objects_dir)
    message = str(info.value)
    assert "refused 2 saved object(s) (1 imported)" in message
    assert (
        "dashboard 'logpipe-overview' (\"logpipe: overview\"): missing_references: "
        "missing index-pattern 'nope'"
    ) in message
    assert "dashboard 'logpipe-http' (\"logpipe: HTTP\"): unknown: bad panelsJSON" in message
    assert isinstance(info.value, SetupError)


async def test_http_error_answer_carries_kibanas_message(
    kibana: tuple[FakeKibana, str], objects_dir: Path
) -> None:
    """A non-200 answer to the import raises KibanaError with Kibana's own message."""
    fake, url = kibana
    text = 'Document "logpipe-overview" belongs to a more recent version of Kibana [9.9.0]'
    fake.import_answer = (400, {"statusCode": 400, "error": "Bad Request", "message": text})
    with pytest.raises(KibanaError, match=r"refused the import \(400 Bad Request\): Document"):
        await import_saved_objects(_settings(url), objects_dir)


async def test_kibana_that_never_becomes_ready_times_out_without_importing(
    kibana: tuple[FakeKibana, str], objects_dir: Path
) -> None:
    """If /api/status stays unavailable past the wait, KibanaError says so and nothing is sent."""
    fake, url = kibana
    fake.statuses = [(503, {"status": {"overall": {"level": "unavailable"}}})]
    with pytest.raises(KibanaError, match=r"not ready within 0s \(last answer: 503"):
        await import_saved_objects(_settings(url, wait_seconds=0.1), objects_dir)
    assert fake.imports == []


async def test_unreachable_kibana_times_out_naming_the_url(objects_dir: Path) -> None:
    """Connection refused counts as not ready; the error names the URL and the last failure."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(KibanaError, match=rf"Kibana at {url} was not ready .*no answer"):
        await import_saved_objects(_settings(url, wait_seconds=0.1), objects_dir)


async def test_rejected_credentials_fail_at_once(
    kibana: tuple[FakeKibana, str], objects_dir: Path
) -> None:
    """A 401 from /api/status raises at once instead of waiting out the timeout."""
    fake, url = kibana
    fake.statuses = [(401, {"statusCode": 401, "error": "Unauthorized"})]
    with pytest.raises(KibanaError, match="refused the credentials"):
        await import_saved_objects(_settings(url, wait_seconds=3600), objects_dir)
    assert len(fake.requests) == 1


async def test_credentials_and_space_reach_kibana(
    kibana: tuple[FakeKibana, str], objects_dir: Path
) -> None:
    """Basic auth or an API key goes on every request; a space prefixes the paths."""
    fake, url = kibana
    await import_saved_objects(_settings(url, username="elastic", password="pw"), objects_dir)
    await import_saved_objects(_settings(url, api_key="a2V5", space="ops"), objects_dir)
    basic, api_key = fake.imports
    assert basic.headers["Authorization"] == "Basic " + base64.b64encode(b"elastic:pw").decode()
    assert basic.path == "/api/saved_objects/_import"
    assert api_key.headers["Authorization"] == "ApiKey a2V5"
    assert api_key.path == "/s/ops/api/saved_objects/_import"
    assert all("Authorization" in r.headers for r in fake.requests)


def test_a_line_that_is_not_a_saved_object_is_named_before_any_request(tmp_path: Path) -> None:
    """A broken NDJSON line raises KibanaError naming its file and line number."""
    path = tmp_path / "broken.ndjson"
    path.write_text(json.dumps(DATA_VIEW) + "\n" + '{"attributes": {}}\n')
    with pytest.raises(KibanaError, match=rf"{path}:2: not a saved object"):
        read_saved_objects(tmp_path)
    path.write_text("{not json\n")
    with pytest.raises(KibanaError, match=rf"{path}:1: not JSON"):
        read_saved_objects(tmp_path)


def test_repository_dashboards_read_as_saved_objects() -> None:
    """The shipped dashboards/ folder reads as saved objects with unique (type, id) pairs."""
    objects = read_saved_objects(Path(__file__).resolve().parents[2] / "dashboards")
    assert len(objects.ids) == len(set(objects.ids)) > 0


def test_a_checkout_finds_its_own_dashboards_folder() -> None:
    """Run from a source tree, the finder reads that tree's dashboards/ folder."""
    assert kibana_module.find_dashboards_dir() == Path(__file__).resolve().parents[2] / "dashboards"


def test_no_saved_objects_anywhere_is_an_error_that_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a source folder or the package data, the error names both and --dashboards."""
    monkeypatch.setattr(kibana_module, "SOURCE_DASHBOARDS", tmp_path / "dashboards")
    monkeypatch.setattr(kibana_module, "DASHBOARDS_PACKAGE", "collector.no_such_dashboards")
    with pytest.raises(KibanaError, match=r"dashboards nor in the package data .*--dashboards"):
        kibana_module.find_dashboards_dir()


def test_a_dashboards_folder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    """--dashboards naming a missing folder raises KibanaError naming it, not a traceback."""
    with pytest.raises(KibanaError, match=rf"in {tmp_path / 'missing'}$"):
        read_saved_objects(tmp_path / "missing")
