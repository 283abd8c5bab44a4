"""The documentation stands alone: its relative links and #anchors resolve inside the
repository, and neither it nor the code points at notes kept outside it.

Links are Markdown inline links and reference definitions outside code blocks and code
spans; anchors are GitHub's: a heading's text, lower-cased, with everything but letters,
digits, `_`, `-` and spaces dropped and spaces made `-`, numbered `-1`, `-2`... when
repeated.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+).*?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+[^)]*)?\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
LINK_TEXT = re.compile(r"!?\[((?:[^\]\\]|\\.)*)\]\([^)]*\)")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")
# A repository path named in a code span, e.g. `collector/wire.py` (globs excepted).
PATH_SPAN = re.compile(
    r"`((?:shipper|collector|logpipe|dashboards|docs|tests|bench|\.ci)/[\w./-]*)`"
)
MODULE_ROW = re.compile(r"^\|\s*`([\w.]+\.py)`\s*\|")
# The code's packages, whose modules docs/architecture.md lists.
PACKAGES = ("shipper", "collector", "logpipe")
# Notes kept outside the repository, which readers of the project cannot open.
OUTSIDE = re.compile(r"DESIGN\.md|DOCKER_LOGS|\.\./shared|/work/shared")


def markdown_files() -> list[Path]:
    """The project's documentation: the README, docs/ and the benchmarks' README."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return pages + sorted((ROOT / "bench").rglob("*.md"))


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines: list[str] = []
    fence = ""
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened.group(1)
            continue
        lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = LINK_TEXT.sub(r"\1", heading).replace("`", "").lower()
    kept = (
        ch
        for ch in text
        if ch in " -" or unicodedata.category(ch)[0] in "LMN" or unicodedata.category(ch) == "Pc"
    )
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_targets(page: Path) -> list[str]:
    """The targets of the page's inline links and reference definitions."""
    targets: list[str] = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        line = CODE_SPAN.sub("", line)
        found = [m.group(1) for m in INLINE_LINK.finditer(line)]
        found += [m.group(1) for m in REFERENCE.finditer(line)]
        targets += [t.removeprefix("<").removesuffix(">") for t in found]
    return targets


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `page` whose file, or whose #anchor in it, does not exist."""
    broken: list[str] = []
    for target in link_targets(page):
        if not target or EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.is_relative_to(root) or not dest.exists():
            broken.append(f"{page.relative_to(root)}: {target}: no such file in the repository")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            broken.append(f"{page.relative_to(root)}: {target}: no heading #{anchor}")
    return broken


def test_relative_links_and_anchors_resolve() -> None:
    """Every relative link in the README and docs/ names an existing file and heading."""
    broken = [problem for page in markdown_files() for problem in broken_links(page)]
    assert broken == []


def test_the_link_check_finds_missing_files_and_headings(tmp_path: Path) -> None:
    """The check reports a missing file and a missing heading, and ignores code and URLs."""
    (tmp_path / "other.md").write_text("# Other page\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# A `code` heading: yes\n"
        "[ok](other.md#twice-1) [ok](#a-code-heading-yes) [ok](<other.md> 'title')\n"
        "[web](https://example.com/x.md) `[code](gone.md)`\n"
        "```\n[fenced](gone.md)\n```\n"
        "[file](gone.md) [heading](other.md#twice-2)\n"
        "[ref]: ../outside.md\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "page.md: gone.md: no such file in the repository",
        "page.md: other.md#twice-2: no heading #twice-2",
        "page.md: ../outside.md: no such file in the repository",
    ]


def test_readme_links_every_page_of_docs() -> None:
    """The README links each page in docs/, so a reader can reach all of them from it."""
    linked = {
        (ROOT / target.partition("#")[0]).resolve() for target in link_targets(ROOT / "README.md")
    }
    assert [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p not in linked] == []


def test_paths_named_in_the_docs_exist() -> None:
    """Every repository path a doc names in a code span, e.g. `collector/wire.py`, exists."""
    missing = [
        f"{page.relative_to(ROOT)}: {match.group(1)}"
        for page in markdown_files()
        for line in prose_lines(page.read_text(encoding="utf-8"))
        for match in PATH_SPAN.finditer(line)
        if not (ROOT / match.group(1)).exists()
    ]
    assert missing == []


def code_packages() -> list[str]:
    """shipper, collector, logpipe and each package inside them (e.g. collector/parse)."""
    inits = [p for name in PACKAGES for p in (ROOT / name).rglob("__init__.py")]
    return sorted(init.parent.relative_to(ROOT).as_posix() for init in inits)


def test_architecture_lists_every_module_of_every_package() -> None:
    """docs/architecture.md has one row per module of each package of shipper/, collector/ and
    logpipe/."""
    listed: dict[str, set[str]] = {name: set() for name in code_packages()}
    package = ""
    for line in prose_lines((ROOT / "docs/architecture.md").read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if heading:
            package = heading.group(1).strip("` /")
        row = MODULE_ROW.match(line)
        if row and package in listed:
            listed[package].add(row.group(1))
    actual = {name: {p.name for p in (ROOT / name).glob("*.py")} for name in listed}
    actual = {name: files - {"__init__.py"} for name, files in actual.items()}
    assert listed == actual


@pytest.mark.parametrize(
    "folder",
    [
        "README.md",
        "docs",
        "shipper",
        "collector",
        "logpipe",
        "tests",
        "bench",
        ".ci",
        "Dockerfile",
        "docker-compose.yml",
        "pyproject.toml",
    ],
)
def test_nothing_points_at_notes_outside_the_repository(folder: str) -> None:
    """No doc, comment, docstring or test refers to design notes kept outside the repository."""
    base = ROOT / folder
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    this = Path(__file__).resolve()
    mentions = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        if path.resolve() != this and path.suffix in {"", ".md", ".py", ".sh", ".yml", ".toml"}
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert mentions == []


def test_every_benchmark_help_says_what_it_measures_in_whole_sentences() -> None:
    """A benchmark's `--help` shows its docstring's first paragraph (bench.summary) or the
    whole docstring: that paragraph ends as a sentence does, never a line cut short."""
    import ast

    from bench import summary

    checked = 0
    for path in sorted((ROOT / "bench").glob("*.py")):
        text = path.read_text()
        if "ArgumentParser(" not in text:
            continue
        checked += 1
        assert "description=summary(__doc__)" in text or "description=__doc__" in text, path.name
        described = summary(ast.get_docstring(ast.parse(text), clean=False))
        assert described.endswith((".", ":")), f"{path.name}: {described!r}"
    assert checked >= 10
    assert summary("One line\nand its end.\n\nMore.") == "One line and its end."


# A default as the README's settings tables write it: `32 MiB`, `0.5 s`, `5000`.
SIZE_UNITS = {"": 1, "s": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
NUMBER = re.compile(r"([0-9.]+)(?: ?(KiB|MiB|GiB|s))?")
WORDS: dict[str, object] = {"false": False, "true": True, "unset": None}


def code_defaults(cls: type[Any]) -> dict[str, object]:
    """Each environment name of a program's settings with its default, a nested section's
    parts by their own names (`LOGPIPE_INDEX__REPLICAS`)."""
    from collector import envnames

    nested = envnames.nested_fields(cls)
    out: dict[str, object] = {}
    for field, names in envnames.field_names(cls).items():
        default = cls.model_fields[field].get_default(call_default_factory=True)
        if field in nested:
            for part in type(default).model_fields:
                out[f"{envnames.PREFIX}{field.upper()}__{part.upper()}"] = getattr(default, part)
        else:
            out.update((name, default) for name in names)
    return out


def row_variables(spans: list[str], known: dict[str, object]) -> list[str]:
    """The variables a row's first cell names, in order: a shortened one (`_BYTES`,
    `__REPLICAS`, `EXCLUDE_NAMES`) is the known name that ends so and whose start begins
    the first name given in full; [] for a row that names a YAML key."""
    if not spans or not spans[0].startswith(("LOGPIPE_", "DOCKER_")):
        return []
    names = []
    for span in spans:
        fits = [n for n in known if n.endswith(span) and spans[0].startswith(n[: -len(span)])]
        names.append(span if span in known else max(fits, key=len, default=span))
    return names


def default_matches(text: str, code: object) -> bool:
    """Whether a default cell's part (`32 MiB`, `0.5 s`, `false`, `unset`, `` `info` ``)
    says the code's default; prose (`detected`) is not checked."""
    from collector import settings_table

    text = text.strip()
    number = NUMBER.fullmatch(text)
    if number:
        value = float(number.group(1)) * SIZE_UNITS[number.group(2) or ""]
        return not isinstance(code, bool) and isinstance(code, int | float) and value == code
    if text.startswith("`") and text.endswith("`"):
        return text.strip("`") == settings_table.shown("", code)
    return WORDS.get(text, code) is code


def test_readme_settings_tables_give_the_defaults_the_code_has() -> None:
    """Every default the README's collector and shipper settings tables give, one per name
    of the row (`8 MiB / 5000`, `1 / 0 / unset / ...`), is the default its program's
    settings class has (a table that drifted)."""
    from collector.config import CollectorConfig
    from shipper.config import ShipperConfig

    checked = []
    for section, cls in (
        ("### Collector settings", CollectorConfig),
        ("### Shipper settings", ShipperConfig),
    ):
        known = code_defaults(cls)
        text = (ROOT / "README.md").read_text().split(f"\n{section}\n", 1)[1].split("\n#", 1)[0]
        for line in text.splitlines():
            cells = line.split("|")
            names = (
                row_variables(re.findall(r"`([^`]+)`", cells[1]), known) if len(cells) > 3 else []
            )
            shown = [part for part in cells[2].split(" / ") if part.strip()] if names else []
            if not shown:
                continue
            assert len(shown) == len(names), f"{names}: {len(shown)} defaults"
            for name, part in zip(names, shown, strict=True):
                code = known[name]
                assert default_matches(part, code), f"{name}: README {part.strip()}, code {code}"
                checked.append(name)
    assert {
        "LOGPIPE_QUEUE_LINES",
        "LOGPIPE_BULK_MAX_BYTES",
        "LOGPIPE_INDEX__REFRESH_INTERVAL",
    } <= set(checked)
    assert checked.count("LOGPIPE_MAX_IN_FLIGHT") == 2


# Benchmarks' own processes, started by a benchmark rather than by hand.
BENCH_HELPERS = {"loadgen"}


def bench_options(path: Path) -> set[str]:
    """The long options a benchmark's command line takes (its `add_argument("--x"` calls)."""
    import ast

    options: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            options |= {
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and arg.value.startswith("--")
            }
    return options - {"--append"}


def test_bench_readme_runs_each_benchmark_as_a_module_with_every_option() -> None:
    """bench/README.md runs each benchmark as `python -m bench.NAME` (a script path cannot
    import `bench`) and its row names every option the benchmark takes."""
    readme = (ROOT / "bench/README.md").read_text()
    assert re.findall(r"python3? bench/\w+\.py", readme) == []
    rows = [line for line in readme.splitlines() if line.startswith("| `python -m bench.")]
    missing = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        if "ArgumentParser(" not in path.read_text() or path.stem in BENCH_HELPERS:
            continue
        own = [row for row in rows if re.search(rf"`python -m bench\.{path.stem}\b", row)]
        assert own, f"bench/README.md has no row for python -m bench.{path.stem}"
        text = " ".join(own)
        missing += [f"{path.stem} {o}" for o in sorted(bench_options(path)) if o not in text]
    assert missing == []


FIELD_SPAN = re.compile(r"`(@?[\w.*]+)`")


def documented_fields(page: Path) -> list[str]:
    """The field names in the first cell of each row of a page's `## Fields` table, a
    shorthand such as `.dataset` completed from the name before it (`data_stream.type`)."""
    lines = page.read_text(encoding="utf-8").split("\n## Fields\n", 1)[1].split("\n#", 1)[0]
    names: list[str] = []
    for line in lines.splitlines():
        if not line.startswith("| `"):
            continue
        for name in FIELD_SPAN.findall(line.split("|")[1]):
            if name.startswith(".") and names:
                name = names[-1].rsplit(".", 1)[0] + name
            names.append(name)
    return names


def test_documents_md_names_every_field_the_template_maps() -> None:
    """Every field of logpipe's index template is a row of docs/documents.md's field table
    (by its name, or a `prefix.*` row), and every row names a field the template maps."""
    from collector.templates import index_template

    body = index_template(
        shards=1, replicas=0, refresh_interval=None, fields={}, constant_keyword=True
    )
    mapped = set(body["template"]["mappings"]["properties"])
    rows = documented_fields(ROOT / "docs/documents.md")
    globs = [name.removesuffix("*") for name in rows if name.endswith(".*")]
    plain = {name for name in rows if not name.endswith(".*")}
    unlisted = sorted(f for f in mapped if f not in plain and not f.startswith(tuple(globs)))
    assert unlisted == []
    assert sorted(plain - mapped) == []
    assert {"data_stream.namespace", "process.exit_code"} <= plain


def settings_variables(cls: type[Any]) -> dict[str, str]:
    """Each environment name of a program's settings (nested sections part by part), mapped
    to its key in the collector's YAML file (`retention.default`)."""
    from collector import envnames

    nested = envnames.nested_fields(cls)
    out: dict[str, str] = {}
    for field, names in envnames.field_names(cls).items():
        if field in nested:
            section = cls.model_fields[field].annotation
            for part in section.model_fields:
                out[f"{envnames.PREFIX}{field.upper()}__{part.upper()}"] = f"{field}.{part}"
        else:
            out[names[0]] = field
    return out


def table_row_names(section: str) -> list[list[str]]:
    """The code spans of the first cell of each row of the README table under `section`."""
    text = (ROOT / "README.md").read_text().split(f"\n{section}\n", 1)[1]
    lines = text.split("\n#", 1)[0].splitlines()
    return [re.findall(r"`([^`]+)`", line.split("|")[1]) for line in lines if line.startswith("|")]


def row_names(spans: list[str], name: str, key: str) -> bool:
    """Whether a row's first cell names a setting: in full, by its YAML section (`retention`),
    or as a shortened next one (`LOGPIPE_BATCH_MAX_LINES` / `_BYTES`, `INCLUDE_NAMES` /
    `EXCLUDE_NAMES`), whose start is the start of a name given in full."""
    full = [s for s in spans if s.startswith(("LOGPIPE_", "DOCKER_"))]
    if name in spans or key.split(".")[0] in spans:
        return True
    return any(
        name.endswith(s) and f.startswith(name[: -len(s)])
        for s in spans
        if s not in full
        for f in full
    )


@pytest.mark.parametrize(
    ("section", "program"),
    [("### Collector settings", "collector"), ("### Shipper settings", "shipper")],
)
def test_readme_settings_tables_name_every_setting(section: str, program: str) -> None:
    """Each variable `logpipe-collector config` or `logpipe-shipper config` prints, and each
    other name the program reads as its own (`LOGPIPE_NATIVE`, `LOGPIPE_CONFIG`), has a row
    of the README's table for its program (a setting added without its documentation)."""
    from collector import config as collector_config
    from collector import envnames
    from shipper import config as shipper_config

    module = collector_config if program == "collector" else shipper_config
    cls = (
        collector_config.CollectorConfig if program == "collector" else shipper_config.ShipperConfig
    )
    variables = settings_variables(cls)
    aliases = {n for ns in envnames.field_names(cls).values() for n in ns}
    variables |= {name: name for name in module.names().exact - aliases}
    rows = table_row_names(section)
    unnamed = [
        name
        for name, key in variables.items()
        if not any(row_names(spans, name, key) for spans in rows)
    ]
    assert unnamed == []
    assert envnames.NATIVE in variables


def test_cli_md_names_every_option_of_logpipe() -> None:
    """docs/cli.md names every option `logpipe search --help` and `logpipe tail --help`
    list (an option added to the command line without its documentation)."""
    import argparse

    from logpipe.args import build_parser

    page = (ROOT / "docs/cli.md").read_text()
    options: set[str] = set()
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                options |= {o for a in command._actions for o in a.option_strings}
    missing = sorted(o for o in options - {"-h", "--help"} if f"`{o}" not in page)
    assert missing == []


def test_readme_names_every_logpipe_variable_that_is_no_setting() -> None:
    """The README's "Environment variables" section names each LOGPIPE_* name the programs
    accept besides their settings (compose's, .ci's, the command line's, the prefixes)."""
    from collector import envnames

    section = (ROOT / "README.md").read_text().split("### Environment variables", 1)[1]
    section = section.split("\n### ", 1)[0]
    names = [*envnames.TOOLING_NAMES, *envnames.TOOLING_PREFIXES, envnames.NATIVE]
    assert sorted(name for name in names if f"`{name}`" not in section) == []


def yaml_blocks(page: Path) -> list[str]:
    """The fenced ```yaml blocks of a page."""
    return re.findall(r"^```yaml\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)


@pytest.mark.parametrize("page", ["docs/retention.md", "README.md"])
def test_retention_examples_load_and_the_shown_error_is_the_real_one(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each `retention:` YAML block of the page is a valid collector config, and the error
    retention.md shows for a rule keeping '2 days' is the one the collector prints."""
    from collector.config import load_config
    from collector.errors import ConfigError

    for name in [n for n in os.environ if n.startswith("LOGPIPE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env
    blocks = [b for b in yaml_blocks(ROOT / page) if b.startswith("retention:")]
    assert blocks
    config = tmp_path / "collector.yaml"
    for block in blocks:
        config.write_text(block)
        assert load_config(config).retention.rules
    if page == "docs/retention.md":
        config.write_text(
            blocks[0]
            .replace("keep: 2d", "keep: 2 days")
            .replace(
                "- match: {level: [debug, trace]}",
                "- name: debug\n      match: {level: [debug, trace]}",
            )
        )
        said = re.search(r"invalid configuration: (.*)", (ROOT / page).read_text())
        assert said is not None, page
        shown = said.group(1)
        with pytest.raises(ConfigError) as caught:
            load_config(config)
        assert str(caught.value) == shown.replace("/etc/logpipe/collector.yaml", str(config))


def test_documents_md_names_the_template_version_the_collector_needs() -> None:
    """documents.md says which template version a collector needs: the one it checks for;
    deploy.md's example of `--version` shows it too."""
    from collector.templates import TEMPLATE_VERSION

    text = " ".join((ROOT / "docs/documents.md").read_text().split())
    assert f"the index template of its own version ({TEMPLATE_VERSION} now)" in text
    deploy = " ".join((ROOT / "docs/deploy.md").read_text().split())
    assert f"(index template version {TEMPLATE_VERSION})`" in deploy


def test_readme_settings_tables_give_the_text_defaults_the_code_has() -> None:
    """Every row of the README's settings tables for one variable whose default is written
    as code (`0.0.0.0:8080`, `token`, `*`) shows the default `config` would print."""
    from pydantic_settings import BaseSettings

    from collector import envnames, settings_table
    from collector.config import CollectorConfig
    from shipper.config import ShipperConfig

    def defaults(cls: type[BaseSettings]) -> dict[str, str]:
        names = envnames.field_names(cls)
        return {
            n: settings_table.shown(f, cls.model_fields[f].get_default(call_default_factory=True))
            for f, ns in names.items()
            for n in ns
        }

    tables = {
        "### Collector settings": defaults(CollectorConfig),
        "### Shipper settings": defaults(ShipperConfig),
    }
    row = re.compile(r"^\| `(LOGPIPE_[A-Z0-9_]+|DOCKER_HOST)` \| `([^`]*)` \|")
    table: dict[str, str] = {}
    checked = []
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("#"):
            table = tables.get(line.strip(), {})
        found = row.match(line)
        if found is not None and found.group(1) in table:
            name, shown = found.groups()
            assert shown == table[name], f"{name}: README {shown}, code {table[name]}"
            checked.append(name)
    assert {"LOGPIPE_ES_URL", "LOGPIPE_DOCUMENT_LABELS", "LOGPIPE_START_AT"} <= set(checked)


def test_read_api_settings_table_gives_the_defaults_the_code_has() -> None:
    """Each row of docs/read-api.md's settings table names a collector setting and the
    default the collector has."""
    from collector import envnames
    from collector.config import CollectorConfig

    names = envnames.field_names(CollectorConfig)
    code = {n: CollectorConfig.model_fields[f].default for f, ns in names.items() for n in ns}
    text = (ROOT / "docs/read-api.md").read_text().split("\n## Settings\n", 1)[1]
    rows = re.findall(r"^\| `(LOGPIPE_[A-Z0-9_]+)` \| ([0-9.]+) \|", text, re.M)
    assert len(rows) >= 7
    assert [(n, float(v)) for n, v in rows] == [(n, float(code[n])) for n, _ in rows]


def test_readme_docs_list_has_every_page() -> None:
    """The README's "## Docs" list, where a reader looks for the documentation, links every
    page of docs/ (a link somewhere else in the README is easy to miss)."""
    section = (ROOT / "README.md").read_text().split("\n## Docs\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"\]\(docs/([\w.-]+\.md)\)", section))
    assert sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name not in listed) == []


def test_every_option_of_the_collectors_commands_is_documented() -> None:
    """Each option of each `logpipe-collector` command appears in the README or docs/
    (an option added to a command without a word on it)."""
    import argparse

    from collector.__main__ import parser

    pages = " ".join(p.read_text() for p in markdown_files() if p.name != "BENCHMARKS.md")
    options: set[str] = set()
    todo = [parser()]
    while todo:
        command = todo.pop()
        for action in command._actions:
            options |= set(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                todo += action.choices.values()
    common = {"-h", "--help", "--version"}
    assert (
        sorted(o for o in options - common if f"`{o}" not in pages and f" {o} " not in pages) == []
    )


# The names of each program's metrics begin so (the collector's retention loop: its own).
METRIC_PREFIXES = {
    "shipper": ("logpipe_shipper_",),
    "collector": ("logpipe_collector_", "logpipe_retention_"),
}
# A metric named in a table row of the docs: `logpipe_shipper_gaps_total{...}`.
METRIC_SPAN = re.compile(r"`(logpipe_(?:shipper|collector|retention)_\w+)")


def registered_metrics(package: str) -> dict[str, set[str]]:
    """Every Prometheus metric `package`'s modules register (counters under their
    `_total` name), with its label names."""
    import importlib
    import pkgutil

    from prometheus_client import REGISTRY

    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, f"{package}."):
        importlib.import_module(module.name)
    found: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        if family.name.startswith(METRIC_PREFIXES[package]):
            name = family.name + ("_total" if family.type == "counter" else "")
            found[name] = set()
    for collector_ in list(REGISTRY._collector_to_names):  # labels of the metric objects
        names = getattr(collector_, "_labelnames", ())
        for name in REGISTRY._collector_to_names[collector_]:
            if name in found:
                found[name] |= set(names)
    return found


@pytest.mark.parametrize(
    ("package", "pages"),
    [
        ("shipper", ["docs/delivery.md"]),
        ("collector", ["README.md", "docs/retention.md", "docs/read-api.md"]),
    ],
)
def test_every_metric_is_documented_with_its_labels(package: str, pages: list[str]) -> None:
    """Each metric a program serves on /metrics is named in its docs, with its labels, and
    each metric a row of their tables names is one it serves (a metric renamed or removed)."""
    text = "\n".join((ROOT / page).read_text(encoding="utf-8") for page in pages)
    metrics = registered_metrics(package)
    assert len(metrics) > 10
    rows = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `logpipe_")]
    tabled = {name for cell in rows for name in METRIC_SPAN.findall(cell)}
    assert sorted(tabled - set(metrics)) == []
    assert len(tabled) > 10
    missing = [name for name in metrics if f"`{name}" not in text]
    assert missing == []
    unlabelled = [
        name
        for name, labels in metrics.items()
        if labels and not re.search(re.escape(name) + r"\{" + ",".join(sorted(labels)), text)
    ]
    assert unlabelled == []


def help_texts() -> str:
    """The `--help` of every command of the three programs."""
    import argparse

    from collector.__main__ import parser as collector_parser
    from logpipe.args import build_parser
    from shipper.__main__ import parser as shipper_parser

    texts = []
    todo = [collector_parser(), shipper_parser(), build_parser()]
    while todo:
        command = todo.pop()
        texts.append(command.format_help())
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += action.choices.values()
    return "\n".join(texts)


def test_every_logpipe_variable_the_docs_and_help_name_is_read() -> None:
    """Each `LOGPIPE_*` name in the README, docs/ (but for the benchmarks' history) and the
    programs' `--help` is one a program accepts: a setting of either, a tooling variable
    or prefix, the command line's (a setting renamed while its old name stays in the
    docs). A name shown as refused (`... no such setting`) is no mention."""
    from collector import envnames
    from collector.config import names as collector_names
    from shipper.config import names as shipper_names

    programs = (collector_names(), shipper_names())
    pages = [p for p in markdown_files() if p.name != "BENCHMARKS.md"]
    lines = [line for page in pages for line in page.read_text(encoding="utf-8").splitlines()]
    lines += help_texts().splitlines()
    named = {
        name
        for line in lines
        if "no such setting" not in line
        for name in re.findall(r"LOGPIPE_[A-Z0-9_]+", line)
    }
    unread = sorted(
        name
        for name in named
        if not any(program.knows(name) for program in programs)
        and name not in envnames.TOOLING_NAMES
        and not name.startswith(envnames.TOOLING_PREFIXES)
    )
    assert unread == []
    assert {"LOGPIPE_NATIVE", "LOGPIPE_READ_TAIL_SETTLE", "LOGPIPE_INDEX__REPLICAS"} <= named
