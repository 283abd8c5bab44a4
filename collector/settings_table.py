"""A program's effective settings as rows: variable, value, where it came from, meaning.

Shared by `logpipe-collector config` and `logpipe-shipper config`, the command itself
too (:func:`add_command`, :func:`write`). Secrets (tokens, passwords, API keys) are never
shown, only whether they are set.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import BaseSettings

from collector import envnames

SECRETS = ("token", "tokens", "password", "api_key")
# The password of a URL's user part (scheme://user:password@host), up to the last @ of
# the part before the path, query or fragment.
_URL_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#:@]*):[^/?#]*@")


def masked_url(url: str) -> str:
    """`url` with the password of its user part hidden (``http://elastic:***@es:9200``), for
    what is printed or logged: the client takes credentials from the URL as well."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


@dataclass(frozen=True)
class Row:
    """One setting as the program will use it."""

    variable: str
    key: str
    value: str
    source: str  # default, environment, .env, or the config file's path
    description: str


def native_row(module: str, in_effect: str) -> Row:
    """LOGPIPE_NATIVE's row: read by the program's native.py at import, no model field."""
    value, source = envnames.native_setting()
    return Row(
        envnames.NATIVE,
        "native",
        value,
        source,
        f"0 (or false, no, off) keeps the Python path even when the compiled hot path "
        f"({module}) is installed; the output is the same either way. In effect: {in_effect}.",
    )


def shown(key: str, value: object) -> str:
    """The value as text, secrets masked."""
    if value is None or value == []:
        return ""
    if key.rsplit(".", 1)[-1].endswith(SECRETS):
        return "(set, hidden)"
    # Unset keys of a section are left out: a rule shows what it says, not seven nulls.
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
    if isinstance(value, list) and any(isinstance(v, BaseModel) for v in value):
        dumped = [
            v.model_dump(mode="json", exclude_none=True) if isinstance(v, BaseModel) else v
            for v in value
        ]
        return json.dumps(dumped, separators=(",", ":"))
    if isinstance(value, list):
        return ",".join(masked_url(str(v)) for v in value)
    return masked_url(str(value))


def rows(
    config: BaseSettings,
    file_data: Mapping[str, object] | None = None,
    file_path: Path | None = None,
    dotenv: Path = Path(".env"),
) -> list[Row]:
    """Every setting of `config`, nested sections part by part."""
    cls = type(config)
    environ = envnames.upper_names(os.environ)
    dotenv_names = envnames.upper_names(envnames.read_dotenv(dotenv))
    names = envnames.field_names(cls)
    nested = envnames.nested_fields(cls)
    data = file_data or {}
    out = []
    for field, info in cls.model_fields.items():
        value = getattr(config, field)
        if field in nested and isinstance(value, BaseModel):
            section = data.get(field)
            part_data = section if isinstance(section, Mapping) else {}
            for part, part_info in type(value).model_fields.items():
                variable = f"{envnames.PREFIX}{field.upper()}__{part.upper()}"
                # A part that is a section too is set by its own parts' names.
                below = variable + envnames.NESTED
                origin = envnames.source_of([variable, below], environ, dotenv_names)
                from_file = part in part_data and file_path is not None
                source = origin or (str(file_path) if from_file else "default")
                text = shown(part, getattr(value, part))
                desc = part_info.description or ""
                out.append(Row(variable, f"{field}.{part}", text, source, desc))
            continue
        origin = envnames.source_of(names[field], environ, dotenv_names)
        from_file = field in data and file_path is not None
        source = origin or (str(file_path) if from_file else "default")
        out.append(Row(names[field][0], field, shown(field, value), source, info.description or ""))
    return out


def render(table: list[Row]) -> str:
    """Rows as text: `VARIABLE=value  [source]` and the meaning below each."""
    lines = []
    for row in table:
        lines.append(f"{row.variable}={row.value}  [{row.source}]")
        if row.description:
            lines.append(f"    {row.description}")
    return "\n".join(lines) + "\n"


def render_json(table: list[Row]) -> str:
    """Rows as a JSON list of objects."""
    return json.dumps([asdict(row) for row in table], indent=2) + "\n"


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], program: str, sources: str
) -> argparse.ArgumentParser:
    """The `config` command of `program` ("collector", "shipper"), whose settings come from
    `sources` ("default, .env or the environment")."""
    what = (
        f"Print every setting of the {program} as it would run now: its environment variable, "
        f"the value in effect (secrets hidden), where that value came from ({sources}) and "
        "what it means."
    )
    # Printed as written (the exit statuses below it are one a line), so wrapped here.
    command = sub.add_parser(
        "config",
        help="print every setting: variable, value in effect, where it came from, meaning",
        description=f"{textwrap.fill(what, 88)}\n\nexample:\n  logpipe-{program} config --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--json", action="store_true", help="print JSON instead of text")
    return command


def write(table: list[Row], as_json: bool) -> None:
    """The rows on stdout, as text or (`as_json`) JSON."""
    sys.stdout.write(render_json(table) if as_json else render(table))
