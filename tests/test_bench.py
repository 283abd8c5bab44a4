"""The benchmarks' own logic that a wrong answer would hide in a table: how a profile's
samples are counted, how shippers are named on the command line."""

from __future__ import annotations

import argparse

import pytest

from bench import es_profile, sidebyside

SAMPLE = """\
jdk.ExecutionSample {{
  startTime = 13:28:48.161 (2026-12-03)
  sampledThread = "{thread}" (javaThreadId = 29)
  state = "STATE_RUNNABLE"
  stackTrace = [
{frames}
    ...
  ]
}}
"""


def sample(thread: str, *frames: str) -> str:
    lines = "\n".join(f"    {f}(Object, int) line: 12" for f in frames)
    return SAMPLE.format(thread=thread, frames=lines)


WRITE = "elasticsearch[node-1][write][T#2]"


def test_a_sample_counts_once_in_the_first_bucket_its_frames_belong_to() -> None:
    text = "\n".join(
        [
            # a date parsed while the id is looked up counts as the lookup (first bucket)
            sample(
                WRITE,
                "org.elasticsearch.index.mapper.DateFieldMapper.parseCreateField",
                "org.elasticsearch.index.engine.InternalEngine.resolveDocVersion",
                "org.elasticsearch.action.bulk.TransportShardBulkAction.performOnPrimary",
            ),
            sample(
                WRITE,
                "org.apache.lucene.index.IndexingChain$PerField.invertTokenStream",
                "org.apache.lucene.index.IndexingChain.processDocument",
            ),
            sample(WRITE, "java.lang.Object.wait"),
            sample(
                "elasticsearch[node-1][[.ds-logs-x][0]: Lucene Merge Thread #3]",
                "org.apache.lucene.index.SegmentMerger.merge",
            ),
        ]
    )
    got = es_profile.parse(text, "run")
    assert got.samples == 4
    assert got.buckets == {
        "_id lookup (a given id: is it indexed?)": 1,
        "text analysis and its terms": 1,
        "merges": 1,
        es_profile.OTHER: 1,
    }
    assert got.pools == {"write": 3, "merge": 1}


def test_frames_without_line_numbers_count_and_other_fields_do_not() -> None:
    text = SAMPLE.format(
        thread="elasticsearch[node-1][refresh][T#1]",
        frames="    org.apache.lucene.search.ReferenceManager.maybeRefresh()\n"
        "    sun.nio.ch.FileDispatcherImpl.force0(FileDescriptor, boolean)",
    )
    got = es_profile.parse(text, "run")
    assert got.buckets == {"refresh": 1}
    assert got.pools == {"refresh": 1}


def test_no_samples_make_an_empty_profile_and_its_table_says_zero() -> None:
    got = es_profile.parse("jdk.CPULoad {\n  machineTotal = 1.0\n}\n", "empty")
    assert got.samples == 0
    assert "| other | 0 |" in es_profile.tables([got])


def test_tables_give_each_recording_a_column_of_counts_and_shares() -> None:
    a = es_profile.parse(sample(WRITE, "org.x.BulkRequestParser.parse") * 3, "a")
    b = es_profile.parse(sample(WRITE, "org.x.Foo.bar"), "b")
    text = es_profile.tables([a, b])
    assert "| what the node did | a | b |" in text
    assert "| bulk request handling | 3 (100.0%) | 0 (0.0%) |" in text
    assert "| other | 0 (0.0%) | 1 (100.0%) |" in text
    assert "| thread pool `write` | 3 (100.0%) | 1 (100.0%) |" in text


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ("logpipe", ["logpipe"]),
        ("Fluent-Bit,logpipe", ["Fluent Bit", "logpipe"]),
        ("logspout, logspout", ["logspout"]),
    ],
)
def test_shippers_are_named_in_any_case_with_a_hyphen_for_a_space(
    given: str, names: list[str]
) -> None:
    assert sidebyside._names(given) == names


@pytest.mark.parametrize("given", ["", "fluentbit", "logpipe,vector"])
def test_an_unknown_shipper_is_refused_with_the_names_known(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="logpipe, fluent-bit, logspout"):
        sidebyside._names(given)
