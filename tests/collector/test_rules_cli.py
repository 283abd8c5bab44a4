"""`logpipe-collector rules test`: sample lines in, each line's rule and document out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    now = json.loads(_rules_test(tmp_path, ACCESS + "\n", "--service", "shop", "--json").stdout)
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
    doc = json.loads(proc.stdout)["document"]
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
    assert json.loads(proc.stdout)["rule"] == "shop_access"


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
    row = json.loads(proc.stdout)
    assert (row["rule"], row["data_stream"]) == ("staging_only", "logs-shop.keep_3d-staging")
    proc = _rules_test(tmp_path, "x y\n", "--label", "logpipe.namespace=Bad-NS")
    assert proc.returncode == 2
    assert "argument --label: logpipe.namespace='Bad-NS' is not a valid" in proc.stderr
