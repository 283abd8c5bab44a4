"""``LOGPIPE_*`` names met in a process environment or a ``.env`` file: which are settings.

The rule, for both programs (README, "Environment variables"): a ``LOGPIPE_*`` name is
fine when it is a setting of either program (one environment or one ``.env`` may serve
both), a nested setting's ``__`` path (checked by the model itself), or one of the
tooling names below (compose, the test suite, benchmarks, ``.ci`` scripts). Any other
``LOGPIPE_*`` name is a mistake, reported with the nearest known name.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import AliasChoices, BaseModel
from pydantic_settings import BaseSettings

# python-dotenv warns of each line it cannot parse, every time the file is read (four
# times at a start); check_names names them once, as a configuration error.
logging.getLogger("dotenv.main").setLevel(logging.ERROR)

PREFIX = "LOGPIPE_"
NESTED = "__"

# LOGPIPE_NATIVE, read by both programs' native.py at import: these spellings turn the
# compiled hot paths off, these leave them on (unset or empty too); others are refused.
NATIVE = "LOGPIPE_NATIVE"
NATIVE_OFF = frozenset({"0", "false", "no", "off"})
NATIVE_ON = frozenset({"", "1", "true", "yes", "on"})


def native_setting(dotenv: Path = Path(".env")) -> tuple[str, str]:
    """LOGPIPE_NATIVE's value and where it comes from (`environment`, `.env` or
    `default`): the environment wins over the ``.env`` file, as for every setting."""
    try:
        in_file = read_dotenv(dotenv)
    except (OSError, UnicodeDecodeError):  # named by check_names with the other settings
        in_file = {}
    for variables, source in ((os.environ, "environment"), (in_file, ".env")):
        for key, value in variables.items():
            if key.upper() == NATIVE:
                return value, source
    return "", "default"


def native_off() -> bool:
    """Whether ``LOGPIPE_NATIVE`` asks for the Python path."""
    return native_setting()[0].strip().lower() in NATIVE_OFF


def load_native(name: str, current: Callable[[ModuleType], bool]) -> ModuleType | None:
    """The extension module `name`, or None: ``LOGPIPE_NATIVE`` asks for the Python
    path, the module is missing, or `current` finds it built from older sources."""
    if native_off():
        return None
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return module if current(module) else None


def native_problem(value: str) -> str | None:
    """What is wrong with a LOGPIPE_NATIVE value (no boolean), or None."""
    if value.strip().lower() in NATIVE_ON | NATIVE_OFF:
        return None
    return (
        f"{NATIVE}: {value!r} is not a boolean: 0/false/no/off keeps the Python path, "
        "1/true/yes/on (or unset) uses the compiled one when installed"
    )


# Read by docker-compose.yml / .env.example, never by the programs themselves.
COMPOSE_NAMES = frozenset(
    {
        "LOGPIPE_IMAGE",
        "LOGPIPE_BASE_IMAGE",
        "LOGPIPE_COLLECTOR_CONFIG",
        "LOGPIPE_TLS_DIR",
        "LOGPIPE_INGEST_BIND",
        "LOGPIPE_INGEST_PORT",
        "LOGPIPE_INGEST_TLS_PORT",
    }
)
# Read by .ci/services, .ci/install and .ci/up; LOGPIPE_REQUIRE_NATIVE by .ci/check and
# the tests of the compiled hot paths (they fail, not skip, without it).
CI_NAMES = frozenset(
    {
        "LOGPIPE_ES_VERSION",
        "LOGPIPE_ES_PORT",
        "LOGPIPE_ES_HEAP",
        "LOGPIPE_SERVICES_DIR",
        "LOGPIPE_REQUIRE_NATIVE",
    }
)
# Whole families of tooling variables: tests, benchmarks, .ci scripts, .ci/up's ports,
# .ci/cluster's folder, ports and heap.
TOOLING_PREFIXES = (
    "LOGPIPE_TEST_",
    "LOGPIPE_BENCH_",
    "LOGPIPE_CI_",
    "LOGPIPE_DEMO_",
    "LOGPIPE_CLUSTER_",
)
# Read by the `logpipe` command line, which may share an environment with both programs.
CLI_NAMES = frozenset({"LOGPIPE_URL", "LOGPIPE_READ_TOKEN", "LOGPIPE_READ_TOKEN_FILE"})
TOOLING_NAMES = COMPOSE_NAMES | CI_NAMES | CLI_NAMES
# Former names of settings, refused with the name to use now. The collector's tail
# settings became LOGPIPE_READ_TAIL_*: LOGPIPE_TAIL_* are the shipper's `GET /logs` ones.
RENAMED = {
    f"LOGPIPE_TAIL_{part}": f"LOGPIPE_READ_TAIL_{part}"
    for part in ("MAX", "POLL_INTERVAL", "SETTLE", "LATE_WINDOW", "BUFFER", "HEARTBEAT")
}


@dataclass(frozen=True)
class Names:
    """The environment names of one program's settings."""

    program: str
    exact: frozenset[str]
    nested: frozenset[str]  # "LOGPIPE_INDEX__": anything below is checked by the model

    def knows(self, name: str) -> bool:
        """Whether `name` (upper case) sets one of these settings."""
        return name in self.exact or name.startswith(tuple(self.nested))


def field_names(settings: type[BaseSettings]) -> dict[str, list[str]]:
    """Each field's environment names (upper case), the first being the one to document."""
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    names: dict[str, list[str]] = {}
    for field, info in settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            choices = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
            names[field] = choices
        else:
            names[field] = [prefix + field.upper()]
    return names


def nested_fields(settings: type[BaseSettings]) -> list[str]:
    """Fields holding a section (a model), settable part by part with ``__`` names."""
    if not settings.model_config.get("env_nested_delimiter"):
        return []
    return [
        field
        for field, info in settings.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    ]


def settings_names(program: str, settings: type[BaseSettings], extra: Iterable[str] = ()) -> Names:
    """The names `settings` reads from the environment, plus `extra` ones of the program."""
    exact = {name for names in field_names(settings).values() for name in names}
    nested = {PREFIX + field.upper() + NESTED for field in nested_fields(settings)}
    return Names(program, frozenset(exact | set(extra)), frozenset(nested))


def is_tooling(name: str) -> bool:
    """A variable of compose, the tests, the benchmarks or the .ci scripts."""
    return name in TOOLING_NAMES or name.startswith(TOOLING_PREFIXES)


def nearest(name: str, own: Names, other: Names) -> str | None:
    """The known setting `name` was most likely meant to be, if one is close."""
    known = {n.removeprefix(PREFIX): n for n in own.exact | other.exact if n.startswith(PREFIX)}
    known |= {n.removeprefix(PREFIX): n for n in own.nested | other.nested}
    match = difflib.get_close_matches(name.removeprefix(PREFIX), list(known), n=1, cutoff=0.6)
    return known[match[0]] if match else None


def unknown_names(
    names: Iterable[str], own: Names, other: Names | Callable[[], Names], origin: str
) -> list[str]:
    """One message per ``LOGPIPE_*`` name that is no setting of either program nor tooling's.

    `other` may be given as a function: it is called only for a name that is not `own`'s
    (the shipper need not import the collector's settings when its environment holds
    only its own names).
    """
    problems = []
    for raw in names:
        name = raw.upper()
        if not name.startswith(PREFIX) or own.knows(name):
            continue
        if callable(other):
            other = other()
        if other.knows(name):
            continue
        if is_tooling(name):
            continue
        guess = nearest(name, own, other)
        if name in RENAMED:
            hint = f"it is now {RENAMED[name]} (the collector's tails)"
        elif guess:
            hint = f"did you mean {guess}?"
        else:
            hint = f"`{own.program} config` lists every setting"
        problems.append(f"{raw} in {origin}: no such setting; {hint}")
    return problems


def unreadable_lines(path: Path) -> list[str]:
    """A problem for each line of a ``.env`` file that is no ``NAME=value`` (python-dotenv
    warns, then goes on without it: `LOGPIPE_TOKENS secret` would be no setting at all)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as stream:
        bad = [binding.original for binding in parse_stream(stream) if binding.error]
    return [
        f"{path}: line {original.line} is no NAME=value setting: {original.string.strip()[:60]!r}"
        for original in bad
    ]


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables a ``.env`` file sets; empty when there is none."""
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None}


def check_names(
    own: Names,
    other: Names | Callable[[], Names],
    environ: Mapping[str, str] | None = None,
    dotenv: Path | None = None,
) -> list[str]:
    """Problems with the ``LOGPIPE_*`` names of the environment and of the ``.env`` file
    (`other`, if a function, is called at most once)."""
    if callable(other):
        other = functools.cache(other)
    env = os.environ if environ is None else environ
    problems = unknown_names(env, own, other, "the environment")
    if dotenv is not None:
        try:
            problems += unreadable_lines(dotenv)
            problems += unknown_names(read_dotenv(dotenv), own, other, str(dotenv))
        except UnicodeDecodeError as exc:
            problems.append(
                f"{dotenv}: not UTF-8 text (byte {exc.start}): save it as UTF-8, "
                "one NAME=value a line"
            )
    return problems


def upper_names(variables: Iterable[str]) -> frozenset[str]:
    """Variable names as the settings read them: without regard to case."""
    return frozenset(name.upper() for name in variables)


def source_of(names: Iterable[str], environ: frozenset[str], dotenv: frozenset[str]) -> str | None:
    """Where a setting known by `names` (or, ending in ``__``, by names below) was set."""
    for origin, present in (("environment", environ), (".env", dotenv)):
        for name in names:
            if name in present or (
                name.endswith(NESTED) and any(p.startswith(name) for p in present)
            ):
                return origin
    return None
