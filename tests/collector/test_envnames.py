"""Which LOGPIPE_* names in an environment or .env are mistakes, and the name meant."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from collector import envnames
from collector.config import names as collector_names
from shipper.config import names as shipper_names


def _problems(environ: dict[str, str], dotenv: Path | None = None) -> list[str]:
    return envnames.check_names(collector_names(), shipper_names(), environ, dotenv)


def test_misspelled_name_is_reported_with_the_nearest_setting() -> None:
    """A misspelled setting is named with the known name it most likely meant."""
    (problem,) = _problems({"LOGPIPE_BULK_MAXDOCS": "10"})
    assert problem.startswith("LOGPIPE_BULK_MAXDOCS in the environment: no such setting")
    assert problem.endswith("did you mean LOGPIPE_BULK_MAX_DOCS?")


def test_a_former_name_is_reported_with_its_new_name() -> None:
    """The collector's tail settings were LOGPIPE_TAIL_*, which the shipper's /logs uses."""
    (problem,) = _problems({"LOGPIPE_TAIL_BUFFER": "10"})
    assert problem == (
        "LOGPIPE_TAIL_BUFFER in the environment: no such setting; "
        "it is now LOGPIPE_READ_TAIL_BUFFER (the collector's tails)"
    )
    assert _problems({"LOGPIPE_READ_TAIL_BUFFER": "10", "LOGPIPE_TAIL_BUFFER_LINES": "10"}) == []


def test_names_that_are_not_mistakes() -> None:
    """Both programs' settings, nested paths, aliases, LOGPIPE_CONFIG, the command line's
    variables and tooling pass."""
    fine = {
        "LOGPIPE_TOKENS": "a",  # the collector's
        "LOGPIPE_TOKEN": "a",  # the shipper's
        "LOGPIPE_INDEX__REPLICAS": "1",
        "LOGPIPE_CONFIG": "/etc/logpipe.yml",
        "DOCKER_HOST": "unix:///x",
        "LOGPIPE_DOCKER_HOST": "unix:///x",
        "LOGPIPE_TEST_ES_URL": "http://es:9200",
        "LOGPIPE_ES_VERSION": "9.2.0",
        "LOGPIPE_SERVICES_DIR": "/x",
        "LOGPIPE_REQUIRE_NATIVE": "1",
        "LOGPIPE_NATIVE": "0",
        "LOGPIPE_IMAGE": "logpipe:local",
        "LOGPIPE_BENCH_CODE": "head",
        "LOGPIPE_URL": "http://collector:8080",  # the logpipe command line's
        "LOGPIPE_READ_TOKEN": "r",
        "LOGPIPE_READ_TOKEN_FILE": "/run/secrets/read",
        "PATH": "/bin",
    }
    assert _problems(fine) == []
    assert envnames.check_names(shipper_names(), collector_names(), fine) == []


def test_dotenv_names_are_checked_by_the_same_rule(tmp_path: Path) -> None:
    """A .env holding compose's names passes; a misspelling in it names the file."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOGPIPE_IMAGE=logpipe:local\nLOGPIPE_TOKEN=x\nLOGPIPE_LISTN=:1\n")
    (problem,) = _problems({}, dotenv)
    assert problem == f"LOGPIPE_LISTN in {dotenv}: no such setting; did you mean LOGPIPE_LISTEN?"


def test_a_dotenv_line_that_is_no_setting_is_named(tmp_path: Path) -> None:
    """`LOGPIPE_TOKENS oitok` (no =) was dropped with a warning of python-dotenv's, four
    times; it is now a problem naming the file and line. Comments, blank lines, export
    and quoted values are settings as before."""
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        '# tokens\n\nexport LOGPIPE_TOKEN="a b"\nLOGPIPE_TOKENS oitok\nLOGPIPE_LISTEN=:1\n'
    )
    assert _problems({}, dotenv) == [
        f"{dotenv}: line 4 is no NAME=value setting: 'LOGPIPE_TOKENS oitok'"
    ]


def test_a_name_far_from_every_setting_points_to_the_config_command() -> None:
    """Without a close setting the message says where every setting is listed."""
    (problem,) = _problems({"LOGPIPE_XYZZY": "1"})
    assert problem.endswith("`logpipe-collector config` lists every setting")


def test_the_compose_env_example_is_accepted_by_both_programs() -> None:
    """Every LOGPIPE_* name of .env.example passes, for the collector and for the shipper."""
    example = Path(__file__).resolve().parents[2] / ".env.example"
    assert "LOGPIPE_IMAGE" in envnames.read_dotenv(example)
    assert envnames.check_names(collector_names(), shipper_names(), {}, example) == []
    assert envnames.check_names(shipper_names(), collector_names(), {}, example) == []


def test_every_name_the_ci_scripts_read_is_accepted_by_both_programs() -> None:
    """A setting of .ci/up, .ci/services, .ci/cluster... exported in a shell does not stop
    either program started from that shell."""
    scripts = (Path(__file__).resolve().parents[2] / ".ci").iterdir()
    names = {n for p in scripts for n in re.findall(r"LOGPIPE_[A-Z0-9_]*[A-Z0-9]", p.read_text())}
    assert "LOGPIPE_CLUSTER_DIR" in names
    environ = dict.fromkeys(names, "1")
    assert _problems(environ) == []
    assert envnames.check_names(shipper_names(), collector_names(), environ) == []


def test_the_other_programs_names_are_read_only_when_a_name_is_not_ones_own() -> None:
    """Given as a function, the other program's names are asked for once, and only for a
    name the program does not know (the shipper's start then skips the collector's
    settings); a collector name still passes and a misspelling is still named."""
    calls: list[int] = []

    def lazily() -> envnames.Names:
        calls.append(1)
        return collector_names()

    own = {"LOGPIPE_TOKEN": "a", "LOGPIPE_COLLECTOR_URL": "http://c:8080", "PATH": "/bin"}
    assert envnames.check_names(shipper_names(), lazily, own) == []
    assert calls == []
    mixed = own | {"LOGPIPE_ES_URL": "http://es:9200", "LOGPIPE_TOKENS": "a"}
    assert envnames.check_names(shipper_names(), lazily, mixed) == []
    assert calls == [1]
    (problem,) = envnames.check_names(shipper_names(), lazily, own | {"LOGPIPE_ES_URLS": "x"})
    assert problem.endswith("did you mean LOGPIPE_ES_URL?")


def test_the_shipper_starts_without_the_collectors_settings() -> None:
    """Its configuration loads from its own names without importing collector.config
    (its parsers and rules: memory and start-up time the shipper does not need)."""
    probe = (
        "import sys; from shipper.config import load_config; load_config(); "
        "print('collector.config' in sys.modules, 'collector.parse' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    env |= {"LOGPIPE_COLLECTOR_URL": "http://127.0.0.1:9", "LOGPIPE_TOKEN": "t"}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=tempfile.gettempdir(),  # no .env there
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False"], out.stderr
