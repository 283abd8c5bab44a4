"""Import logpipe's Kibana saved objects (``dashboards/*.ndjson``) into a Kibana.

:func:`import_saved_objects` first waits until Kibana answers ``GET /api/status`` as
available, saying so every few seconds, then sends every object of every file in one
``POST /api/saved_objects/_import?overwrite=true`` (multipart form, field ``file``,
header ``kbn-xsrf``). One request, so that references between the files resolve inside
it; ``overwrite``, so that running it again replaces the objects (idempotent).

The objects live in the repository's top-level ``dashboards/`` folder, which an
installed logpipe (wheel, Docker image) carries as the package data
``collector/dashboards/`` (see ``package-dir`` in pyproject.toml):
:func:`find_dashboards_dir` reads the source tree's folder when collector runs from one
(a checkout or an editable install), else that package data through
:mod:`importlib.resources`.

This is the edge module for Kibana: aiohttp's exceptions become :class:`KibanaError`
here and nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collector.errors import KibanaError

log = logging.getLogger("logpipe.collector.kibana")

Progress = Callable[[str], None]

# The saved objects as an installed logpipe carries them, and as a source tree holds them.
DASHBOARDS_PACKAGE = "collector.dashboards"
SOURCE_DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
READY_LEVELS = frozenset({"available", "degraded"})


@dataclass(frozen=True, slots=True)
class KibanaSettings:
    """How to reach Kibana, and how long to wait for it."""

    url: str
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    space: str | None = None
    ca_file: Path | None = None
    wait_seconds: float = 300.0
    poll_seconds: float = 2.0
    progress_seconds: float = 5.0
    request_timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class SavedObjects:
    """The NDJSON body to import and what it holds."""

    body: bytes
    ids: tuple[tuple[str, str], ...]
    files: tuple[Traversable, ...]


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What Kibana reported after a successful import."""

    kibana_version: str
    imported: int


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Overall(_Model):
    level: str = "unknown"
    summary: str = ""


class _StatusBody(_Model):
    overall: _Overall = _Overall()


class _Version(_Model):
    number: str = "unknown"


class _Status(_Model):
    version: _Version = _Version()
    status: _StatusBody = _StatusBody()


class _Reference(_Model):
    type: str
    id: str


class _ErrorDetail(_Model):
    type: str
    message: str | None = None
    references: list[_Reference] = []


class _Meta(_Model):
    title: str | None = None


class _ObjectError(_Model):
    type: str
    id: str
    title: str | None = None
    meta: _Meta = _Meta()
    error: _ErrorDetail


class _ImportAnswer(_Model):
    success: bool
    success_count: int = Field(0, alias="successCount")
    errors: list[_ObjectError] = []


def find_dashboards_dir() -> Traversable:
    """The shipped saved objects: the source tree's ``dashboards/``, else the package data."""
    # A source tree first: its editable install cannot import the mapped package (setuptools
    # finds no namespace package below a regular one), and a checkout must read its own files.
    if _ndjson_files(SOURCE_DASHBOARDS):
        return SOURCE_DASHBOARDS
    try:
        folder = resources.files(DASHBOARDS_PACKAGE)
    except ModuleNotFoundError:
        folder = None
    if folder is None or not _ndjson_files(folder):
        raise KibanaError(
            f"no Kibana saved objects (*.ndjson) found in {SOURCE_DASHBOARDS} nor in the "
            f"package data {DASHBOARDS_PACKAGE}: reinstall logpipe or pass --dashboards"
        )
    return folder


def read_saved_objects(folder: Traversable) -> SavedObjects:
    """Every object of every ``*.ndjson`` file in `folder`, checked to be an object."""
    files = _ndjson_files(folder)
    if not files:
        raise KibanaError(f"no Kibana saved objects (*.ndjson) in {folder}")
    lines: list[bytes] = []
    ids: list[tuple[str, str]] = []
    for path in files:
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                ids.append(_object_id(line, f"{path}:{number}"))
                lines.append(line)
    return SavedObjects(b"\n".join(lines) + b"\n", tuple(ids), files)


def _ndjson_files(folder: Traversable) -> tuple[Traversable, ...]:
    """The ``*.ndjson`` files of `folder` by name; none if it is not a folder."""
    if not folder.is_dir():
        return ()
    found = (f for f in folder.iterdir() if f.name.endswith(".ndjson") and f.is_file())
    return tuple(sorted(found, key=lambda f: f.name))


def _object_id(line: bytes, where: str) -> tuple[str, str]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise KibanaError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(obj, dict) or not obj.get("type") or not obj.get("id"):
        raise KibanaError(f"{where}: not a saved object (needs 'type' and 'id')")
    return str(obj["type"]), str(obj["id"])


async def import_saved_objects(
    settings: KibanaSettings, folder: Traversable | None = None, progress: Progress | None = None
) -> ImportResult:
    """Wait for Kibana, then import every saved object of `folder` in one request."""
    objects = read_saved_objects(folder or find_dashboards_dir())
    say = progress or log.info
    async with _session(settings) as session:
        version = await wait_for_kibana(session, settings, say)
        say(f"importing {len(objects.ids)} saved objects into Kibana {version} at {settings.url}")
        imported = await _post_import(session, settings, objects)
    return ImportResult(kibana_version=version, imported=imported)


def _session(settings: KibanaSettings) -> aiohttp.ClientSession:
    headers = {"kbn-xsrf": "true"}
    if settings.api_key:
        headers["Authorization"] = f"ApiKey {settings.api_key}"
    elif settings.username:
        pair = f"{settings.username}:{settings.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    ctx = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else None
    return aiohttp.ClientSession(
        headers=headers,
        connector=aiohttp.TCPConnector(ssl=ctx if ctx is not None else True),
        timeout=aiohttp.ClientTimeout(total=settings.request_timeout),
    )


def _api(settings: KibanaSettings, path: str) -> str:
    space = f"/s/{settings.space}" if settings.space else ""
    return f"{settings.url.rstrip('/')}{space}{path}"


async def wait_for_kibana(
    session: aiohttp.ClientSession, settings: KibanaSettings, progress: Progress
) -> str:
    """Poll ``/api/status`` until Kibana is available; its version number."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    last_said = start
    while True:
        ready, version, why = await _status(session, settings)
        if ready:
            return version
        waited = loop.time() - start
        if waited >= settings.wait_seconds:
            raise KibanaError(
                f"Kibana at {settings.url} was not ready within {settings.wait_seconds:.0f}s "
                f"(last answer: {why})"
            )
        if loop.time() - last_said >= settings.progress_seconds:
            last_said = loop.time()
            progress(
                f"waiting for Kibana at {settings.url} ({why}); "
                f"{waited:.0f}s of {settings.wait_seconds:.0f}s"
            )
        await asyncio.sleep(settings.poll_seconds)


async def _status(
    session: aiohttp.ClientSession, settings: KibanaSettings
) -> tuple[bool, str, str]:
    """(ready, version, why not) from one ``GET /api/status``."""
    try:
        async with session.get(_api(settings, "/api/status")) as resp:
            body = await resp.read()
            status = resp.status
            reason = resp.reason or ""
    except (aiohttp.ClientError, TimeoutError) as exc:
        return False, "", f"no answer: {exc or type(exc).__name__}"
    if status in (401, 403):
        raise KibanaError(
            f"Kibana at {settings.url} refused the credentials ({status} {reason}): "
            "give a user or an API key allowed to manage saved objects"
        )
    if status != 200:
        return False, "", f"{status} {reason}"
    try:
        answer = _Status.model_validate_json(body)
    except ValidationError:
        return False, "", "200 with a body that is not Kibana's status"
    level = answer.status.overall.level
    return level in READY_LEVELS, answer.version.number, f"status {level}"


async def _post_import(
    session: aiohttp.ClientSession, settings: KibanaSettings, objects: SavedObjects
) -> int:
    form = aiohttp.FormData()
    form.add_field(
        "file", objects.body, filename="logpipe.ndjson", content_type="application/ndjson"
    )
    url = _api(settings, "/api/saved_objects/_import")
    try:
        async with session.post(url, params={"overwrite": "true"}, data=form) as resp:
            status, reason, body = resp.status, resp.reason or "", await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise KibanaError(f"importing saved objects into {settings.url} failed: {exc}") from exc
    if status != 200:
        raise KibanaError(f"Kibana refused the import ({status} {reason}): {_message(body)}")
    try:
        answer = _ImportAnswer.model_validate_json(body)
    except ValidationError as exc:
        raise KibanaError(
            f"Kibana's answer to the import is not understood: {body[:200]!r}"
        ) from exc
    if not answer.success or answer.errors:
        raise KibanaError(describe_refusals(answer.errors, answer.success_count))
    return answer.success_count


def _message(body: bytes) -> str:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace")
    if isinstance(answer, dict) and "message" in answer:
        return str(answer["message"])
    return body[:500].decode("utf-8", "replace")


def describe_refusals(errors: list[_ObjectError], imported: int) -> str:
    """One line per refused object, naming it and Kibana's reason."""
    lines = [f"Kibana refused {len(errors)} saved object(s) ({imported} imported):"]
    for err in errors:
        title = err.title or err.meta.title
        name = f"{err.type} '{err.id}'" + (f' ("{title}")' if title else "")
        reason = err.error.type
        if err.error.references:
            missing = ", ".join(f"{r.type} '{r.id}'" for r in err.error.references)
            reason += f": missing {missing}"
        if err.error.message:
            reason += f": {err.error.message}"
        lines.append(f"  {name}: {reason}")
    return "\n".join(lines)
