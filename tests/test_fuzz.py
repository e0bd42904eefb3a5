"""Fuzzing the two inputs nobody controls: hook stdin and transcript lines. Hooks answer 0 or 2 with valid JSON and
never crash; the transcript reader never raises, whatever the bytes."""

from __future__ import annotations

import io
import json
from pathlib import Path

from builders import response, transcript_path, write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from token_budget.claude.hook import run
from token_budget.claude.transcript import event_from_line, ingest_files
from token_budget.ledger import Ledger

EVENTS = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SubagentStop", "SessionEnd",
          "PreCompact", "Notification", ""]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True), st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                           max_leaves=25)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def call(event: str, stdin: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run([event], io.StringIO(stdin), out, io.StringIO())
    return code, out.getvalue()


def realistic_payload(claude_dir: Path) -> st.SearchStrategy[dict]:
    base = {"session_id": "s", "cwd": "/tmp", "hook_event_name": "PreToolUse",
            "transcript_path": str(transcript_path(claude_dir)), "tool_name": "Bash", "tool_input": {"command": "x"}}
    return st.fixed_dictionaries({}, optional={k: st.one_of(st.just(v), json_values) for k, v in base.items()})


@FUZZ
@given(event=st.sampled_from(EVENTS), raw=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(
    lambda b: b.decode("utf-8", "replace"))))
def test_any_text_on_stdin_gets_exit_0_or_2_and_json(data_dir: Path, event: str, raw: str) -> None:
    code, out = call(event, raw)
    assert code in (0, 2)
    json.loads(out)


@FUZZ
@given(data=st.data())
def test_payloads_with_wrong_types_in_every_field_never_crash(data_dir: Path, claude_dir: Path, data: st.DataObject
                                                              ) -> None:
    payload = data.draw(realistic_payload(claude_dir))
    event = data.draw(st.sampled_from(EVENTS))
    code, out = call(event, json.dumps(payload))
    assert code in (0, 2)
    json.loads(out)


def test_deeply_nested_stdin_fails_open(data_dir: Path) -> None:
    code, out = call("Stop", "[" * 100_000 + "]" * 100_000)
    assert code == 0
    assert "systemMessage" in json.loads(out)


usage_values = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), scalars, json_values)


@FUZZ
@given(data=st.data())
def test_transcript_lines_with_random_usage_never_break_ingest(data_dir: Path, claude_dir: Path,
                                                               data: st.DataObject) -> None:
    path = transcript_path(claude_dir, "fuzz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    line = response(session_id="fuzz")[0]
    usage = line["message"]["usage"]
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        if data.draw(st.booleans()):
            usage[key] = data.draw(usage_values)
    if data.draw(st.booleans()):
        line[data.draw(st.sampled_from(["timestamp", "message", "requestId", "sessionId", "isSidechain"]))] = (
            data.draw(json_values))
    text = json.dumps(line, allow_nan=True)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    with open(path, "w") as handle:
        handle.write(text[:cut] + data.draw(st.sampled_from(["", "\n"])) + text + "\n")
    with Ledger.open(data_dir) as ledger:
        result = ingest_files(ledger, [path], source="hook")
        assert result.errors == []
        for row in ledger.rows():
            assert all(row[c] >= 0 for c in ("input_tokens", "output_tokens", "cache_read_tokens"))


@FUZZ
@given(entry=json_values)
def test_event_from_line_returns_an_event_none_or_raises_value_error(entry: object) -> None:
    try:
        event_from_line(entry)
    except ValueError:
        pass


def test_unicode_everywhere_is_kept(data_dir: Path, claude_dir: Path) -> None:
    lines = response(session_id="sé-日本-🚀", cwd="/tmp/プロジェクト")
    path = write_lines(transcript_path(claude_dir, "sé-日本-🚀"), lines)
    with Ledger.open(data_dir) as ledger:
        ingest_files(ledger, [path], source="hook")
        assert ledger.rows()[0]["session_id"] == "sé-日本-🚀"
