"""`logpipe-collector rules test`: sample lines in, each line's rule and document out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.programs import clean_env, one_line_error

RULES = """\
rules:
  - name: health
    match: {service: shop}
    regex: 'GET /healthz'
    drop: true
  - name: shop_access
    match: {service: shop}
    dissect: '%{client} %{} %{} [%{time}] "%{request}" %{status} %{bytes} %{request_time}'
    fields: {status: long, bytes: long, request_time: double, client: ip}
    timestamp: {field: time, format: '%d/%b/%Y:%H:%M:%S %z'}
"""
ACCESS = '10.0.0.7 - - [01/May/2025:12:00:00 +0000] "GET /cart HTTP/1.1" 200 512 0.042'


def _rules_test(tmp_path: Path, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "collector.yaml"
    if not config.exists():
        config.write_text(RULES)
    return subprocess.run(
        [sys.executable, "-m", "collector", "rules", "test", "--config", str(config), *args],
        input=stdin,
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rows(
    proc: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes],
) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_each_line_shows_its_rule_and_document(tmp_path: Path) -> None:
    """--json prints per line the rule, the data stream and the document, or the drop."""
    lines = f"{ACCESS}\n{ACCESS.replace('/cart', '/healthz')}\nplain words\n"
    proc = _rules_test(
        tmp_path, lines, "--service", "shop", "--json", "--docker-time", "2025-05-01T12:00:01Z"
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows[0]["rule"] == "shop_access"
    assert rows[0]["document"]["fields"] == {
        "status": 200,
        "bytes": 512,
        "request_time": 0.042,
        "client": "10.0.0.7",
    }
    assert rows[0]["data_stream"] == "logs-docker.keep_14d-default"
    assert rows[0]["document"]["@timestamp"] == "2025-05-01T12:00:00.000000000Z"
    assert "rule_failure" not in rows[0]["document"].get("logpipe", {})
    assert rows[1] == {"line": 2, "dropped_by": "health"}
    assert rows[2]["rule"] is None
    assert rows[2]["document"]["message"] == "plain words"


def test_text_output_names_the_rule_and_another_service_gets_none(tmp_path: Path) -> None:
    """The text form says 'rule NAME' or 'no rule'; --service decides which rules match."""
    shop = _rules_test(tmp_path, ACCESS + "\n", "--service", "shop")
    assert shop.stdout.startswith("line 1: rule shop_access -> logs-docker.keep_14d-default\n{")
    other = _rules_test(tmp_path, ACCESS + "\n", "--service", "billing")
    assert other.stdout.startswith("line 1: no rule -> ")


def test_a_bad_rule_is_one_line_naming_it(tmp_path: Path) -> None:
    """A rule that does not compile stops the command with exit 2 and one line naming it."""
    (tmp_path / "collector.yaml").write_text("rules:\n  - {name: bad, regex: '(?<=x)y'}\n")
    proc = _rules_test(tmp_path, ACCESS + "\n")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "rule 'bad': the regular expression does not compile (RE2)" in line


def test_help_shows_an_example(tmp_path: Path) -> None:
    """`rules test --help` explains the command with a worked example."""
    proc = _rules_test(tmp_path, "", "--help")
    assert proc.returncode == 0
    assert "example:" in proc.stdout
    assert "dissect:" in proc.stdout
    assert "--service" in proc.stdout


def test_docker_time_is_now_unless_given(tmp_path: Path) -> None:
    """Without --docker-time a line from 2025 is further than timestamp_max_skew from
    Docker's time, as `serve` would find it; --docker-time checks saved lines at their
    own time, and a time that is not RFC 3339 is refused with exit 2."""
    now = _rows(_rules_test(tmp_path, ACCESS + "\n", "--service", "shop", "--json"))[0]
    [failure] = now["document"]["logpipe"]["rule_failure"]
    assert "more than the allowed skew (timestamp_max_skew)" in failure
    assert now["document"]["@timestamp"] != "2025-05-01T12:00:00.000000000Z"
    bad = _rules_test(tmp_path, ACCESS + "\n", "--docker-time", "yesterday")
    assert bad.returncode == 2
    assert "--docker-time: 'yesterday' is not an RFC 3339 time" in bad.stderr


def test_lines_that_are_not_utf8_are_tagged_not_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 reach the rules as `serve` gets them from a shipper:
    replaced (U+FFFD) and the document tagged invalid_utf8."""
    config = tmp_path / "collector.yaml"
    config.write_text(RULES)
    proc = subprocess.run(
        [sys.executable, "-m", "collector", "rules", "test", "--config", str(config), "--json"],
        input=b'ok \xff\xfe "quoted"\n',
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    doc = _rows(proc)[0]["document"]
    assert doc["message"] == 'ok \ufffd\ufffd "quoted"'
    assert doc["tags"] == ["invalid_utf8"]


def test_an_unknown_parser_is_refused(tmp_path: Path) -> None:
    """--parser takes the parser names a container's logpipe.parser label takes."""
    proc = _rules_test(tmp_path, "x\n", "--parser", "bogus")
    assert proc.returncode == 2
    assert "argument --parser: invalid choice: 'bogus'" in proc.stderr


def test_a_label_without_a_value_is_refused_and_one_with_a_value_names_the_rule(
    tmp_path: Path,
) -> None:
    """--label takes KEY=VALUE: a bare key is a usage error (exit 2), not a label of no
    value that quietly names no rule."""
    proc = _rules_test(tmp_path, "x\n", "--label", "logpipe.rule")
    assert proc.returncode == 2
    assert "argument --label: 'logpipe.rule' is not KEY=VALUE" in proc.stderr
    proc = _rules_test(tmp_path, ACCESS + "\n", "--label", "logpipe.rule=shop_access", "--json")
    assert proc.returncode == 0, proc.stderr
    assert _rows(proc)[0]["rule"] == "shop_access"


def test_hint_labels_set_the_namespace_and_dataset_as_the_shipper_does(tmp_path: Path) -> None:
    """--label logpipe.namespace=... and logpipe.dataset=... are the container's hints, as
    the shipper sends them: rules and retention matching the namespace apply, and the
    data stream is the one serve writes to; a value the shipper refuses is exit 2."""
    (tmp_path / "collector.yaml").write_text(
        "rules:\n  - {name: staging_only, match: {namespace: staging}, dissect: '%{a} %{b}'}\n"
        "retention:\n  rules:\n    - {match: {namespace: staging}, keep: 3d}\n"
    )
    labels = ["--label", "logpipe.namespace=staging", "--label", "logpipe.dataset=shop"]
    proc = _rules_test(tmp_path, "x y\n", *labels, "--json")
    assert proc.returncode == 0, proc.stderr
    row = _rows(proc)[0]
    assert (row["rule"], row["data_stream"]) == ("staging_only", "logs-shop.keep_3d-staging")
    proc = _rules_test(tmp_path, "x y\n", "--label", "logpipe.namespace=Bad-NS")
    assert proc.returncode == 2
    assert "argument --label: logpipe.namespace='Bad-NS' is not a valid" in proc.stderr


JAVA = """\
2025-05-01 12:00:00,123 INFO  [main] c.e.Shop - order 42 paid in 87 ms
2025-05-01 12:00:01,000 ERROR [main] c.e.Shop - payment failed
java.lang.IllegalStateException: boom
\tat com.acme.Shop.pay(Shop.java:10)
\tat com.acme.Shop.main(Shop.java:3)
2025-05-01 12:00:02,000 INFO  [main] c.e.Shop - order 43 paid in 12 ms
"""
JAVA_RULES = """\
rules:
  - name: paid
    match: {service: shop}
    regex: '^\\S+ \\S+ +\\w+ +\\[(?P<thread>[^\\]]+)\\] \\S+ - order (?P<order>\\d+) paid in
      (?P<ms>\\d+) ms'
    fields: {order: long, ms: long, currency: keyword}
  - name: failed
    match: {service: shop}
    regex: ' - payment failed(?s:(?P<trace>.*))'
  - name: unused
    match: {service: billing}
    dissect: '%{a} %{b}'
"""


def test_files_are_read_in_turn_and_a_missing_one_is_named(tmp_path: Path) -> None:
    """Files given after the options are read one after the other, their lines numbered
    on; `-` reads stdin; a file that is not there stops the command (exit 2), named."""
    (tmp_path / "a.log").write_text(f"{ACCESS}\n")
    (tmp_path / "b.log").write_text("plain words\nmore words\n")
    rows = _rows(
        _rules_test(tmp_path, "from stdin\n", "--service", "shop", "--json", "a.log", "-", "b.log")
    )
    assert [(r["line"], r["rule"]) for r in rows[:-1]] == [
        (1, "shop_access"), (2, None), (3, None), (4, None)
    ]  # fmt: skip
    assert [r["document"]["message"] for r in rows[1:-1]] == [
        "from stdin", "plain words", "more words"
    ]  # fmt: skip
    missing = _rules_test(tmp_path, "", "a.log", "nosuch.log")
    assert missing.returncode == 2
    assert one_line_error(missing) == "logpipe-collector: rules test: nosuch.log: no such file"
    assert missing.stdout == ""


def test_a_multiline_label_joins_lines_as_the_shipper_does(tmp_path: Path) -> None:
    """With the container's logpipe.multiline label, a stack trace and the ERROR line it
    was logged under are one document, as the shipper sends them; without it, each line
    is one, as the collector joins nothing."""
    (tmp_path / "collector.yaml").write_text(JAVA_RULES)
    args = ("--service", "shop", "--json")
    joined = _rows(_rules_test(tmp_path, JAVA, *args, "--label", "logpipe.multiline=java"))
    assert [(r["line"], r.get("lines", 1), r["rule"]) for r in joined[:-1]] == [
        (1, 1, "paid"), (2, 4, "failed"), (6, 1, "paid")
    ]  # fmt: skip
    trace = joined[1]["document"]
    assert trace["logpipe"]["lines"] == 4
    assert trace["attributes"]["trace"].splitlines()[1] == "java.lang.IllegalStateException: boom"
    alone = _rows(_rules_test(tmp_path, JAVA, *args))
    assert [(r["line"], "lines" in r, r["rule"]) for r in alone[:-1]] == [
        (1, False, "paid"), (2, False, "failed"), (3, False, None), (4, False, None),
        (5, False, None), (6, False, "paid"),
    ]  # fmt: skip
    text = _rules_test(tmp_path, JAVA, "--service", "shop", "--label", "logpipe.multiline=java")
    assert "\nlines 2-5 (joined): rule failed -> logs-docker.keep_14d-default\n{" in text.stdout


def test_the_summary_counts_each_rule_and_names_keys_never_captured(tmp_path: Path) -> None:
    """After the last record: how many lines each rule applied to (or dropped), how many
    no rule took, and per rule that applied, its keys no document of it held."""
    (tmp_path / "collector.yaml").write_text(
        JAVA_RULES + "  - {name: quiet, match: {service: shop}, regex: ' DEBUG ', drop: true}\n"
    )
    lines = JAVA + "2025-05-01 12:00:03,000 DEBUG [main] c.e.Shop - x\n"
    rows = _rows(_rules_test(tmp_path, lines, "--service", "shop", "--json"))
    assert rows[-1] == {
        "summary": {
            "lines": 7,
            "records": 7,
            "applied": {"paid": 2, "failed": 1, "unused": 0, "quiet": 0},
            "dropped": {"quiet": 1},
            "rule_failures": {},
            "no_rule": 3,
            "left_out": 0,
            "never_captured": {"paid": ["currency"]},
        }
    }
    text = _rules_test(tmp_path, lines, "--service", "shop").stdout
    assert text.endswith(
        "summary: 7 lines in 7 records\n"
        "  rule paid: applied to 2\n"
        "  rule failed: applied to 1\n"
        "  rule unused: applied to 0\n"
        "  rule quiet: dropped 1\n"
        "  no rule: 3\n"
        "  rule paid never captured: currency\n"
    )


def test_lines_the_labels_filter_out_are_said_to_be_left_out(tmp_path: Path) -> None:
    """logpipe.exclude_lines leaves lines out at the shipper: they are named, not made."""
    rows = _rules_test(
        tmp_path, "keep me\nGET /healthz\n", "--json", "--label", "logpipe.exclude_lines=healthz"
    )
    assert _rows(rows)[1] == {"line": 2, "left_out": True}
    assert _rows(rows)[-1]["summary"]["left_out"] == 1


def test_the_summary_counts_values_not_of_their_type(tmp_path: Path) -> None:
    """A line a rule applied to with a value not of its type is counted as applied, and
    among that rule's rule_failure documents."""
    bad = ACCESS.replace(" 200 ", " 2OO ")
    at = ("--service", "shop", "--docker-time", "2025-05-01T12:00:01Z")
    proc = _rules_test(tmp_path, f"{ACCESS}\n{bad}\n", *at, "--json")
    summary = _rows(proc)[-1]["summary"]
    assert (summary["applied"]["shop_access"], summary["rule_failures"]) == (2, {"shop_access": 1})
    text = _rules_test(tmp_path, f"{ACCESS}\n{bad}\n", *at).stdout
    assert "\n  rule shop_access: applied to 2 (1 tagged rule_failure)\n" in text
