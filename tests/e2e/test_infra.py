"""Proves the e2e infrastructure itself (mock API, namespace, network guard) with a throwaway plugin."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from .harness import (
    CLAUDE_VERSION,
    DEFAULT_MODEL,
    Binaries,
    ClaudeEnv,
    NetworkGuardError,
    make_recorder_plugin,
    parse_strace,
    read_jsonl,
    request_text,
)
from .mock_api import MockAnthropicAPI, bash_turn, text_turn, usage_totals

pytestmark = pytest.mark.e2e

USAGE_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")

TWO_TURNS = [
    bash_turn(
        "echo hi",
        input_tokens=100,
        cache_creation_input_tokens=50,
        cache_read_input_tokens=2000,
        output_tokens=20,
    ),
    text_turn(
        "All done.",
        input_tokens=120,
        cache_creation_input_tokens=30,
        cache_read_input_tokens=2050,
        output_tokens=7,
        ephemeral_1h_input_tokens=10,
    ),
]


# ------------------------------------------------------------------------------- no CLI: mock and parsers


def test_mock_api_in_process_streams_scripted_turns() -> None:
    with MockAnthropicAPI(TWO_TURNS) as api:

        def post(body: dict) -> tuple[str, str]:
            req = urllib.request.Request(
                f"{api.base_url}/v1/messages?beta=true",
                data=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.headers["request-id"], r.read().decode()

        rid1, sse1 = post(
            {
                "model": "m-one",
                "stream": True,
                "system": "SYS",
                "messages": [{"role": "user", "content": "hello there"}],
            }
        )
        rid2, sse2 = post({"model": "m-two", "stream": True, "messages": [{"role": "user", "content": "x"}]})
        rid3, sse3 = post({"model": "m-three", "stream": True, "messages": []})
    events = [json.loads(ln[6:]) for ln in sse1.splitlines() if ln.startswith("data: ")]
    assert [e["type"] for e in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    msg = events[0]["message"]
    assert msg["model"] == "m-one" and msg["usage"]["output_tokens"] == 1
    assert msg["usage"]["cache_creation"] == {"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 0}
    assert events[2]["content_block"]["name"] == "Bash"
    assert json.loads(events[3]["delta"]["partial_json"])["command"] == "echo hi"
    assert events[5]["delta"]["stop_reason"] == "tool_use" and events[5]["usage"]["output_tokens"] == 20
    assert '"ephemeral_1h_input_tokens":10' in sse2 and '"stop_reason":"end_turn"' in sse2
    assert "Done." in sse3  # script exhausted -> default final text
    assert len({rid1, rid2, rid3}) == 3
    recs = api.message_requests
    assert [r["model"] for r in recs] == ["m-one", "m-two", "m-three"]
    assert [r["turn_index"] for r in recs] == [0, 1, None]
    assert "SYS" in request_text(recs[0]) and "hello there" in request_text(recs[0])
    with MockAnthropicAPI(TWO_TURNS) as api2:
        pass
    assert api2.run_tag != api.run_tag  # ids differ across restarts


def test_strace_parser_flags_only_outside_traffic() -> None:
    log = "\n".join(
        [
            '7 connect(9, {sa_family=AF_INET, sin_port=htons(18777), sin_addr=inet_addr("127.0.0.1")}, 16) '
            "= -1 "
            "EINPROGRESS (Operation now in progress)",
            '7 connect(12, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) '
            "= -1 "
            "ENETUNREACH (Network is unreachable)",
            "8 connect(3, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
            'inet_pton(AF_INET6, "2606:4700::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH',
            "8 connect(3, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), "
            'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ECONNREFUSED',
            '9 connect(4, {sa_family=AF_UNIX, sun_path="/run/x.sock"}, 110) = 0',
            '9 sendto(5, "abc", 3, 0, {sa_family=AF_INET, sin_port=htons(53), '
            'sin_addr=inet_addr("127.0.0.53")}, 16)'
            " = 3",
        ]
    )
    conns = parse_strace(log)
    assert [(c.address, c.port, c.outside) for c in conns] == [
        ("127.0.0.1", 18777, False),
        ("10.255.255.53", 53, True),
        ("2606:4700::1", 443, True),
        ("::1", 80, False),
        ("127.0.0.53", 53, True),
    ]


# ------------------------------------------------------------------------------------- the real CLI


def test_cli_version(claude_env: ClaudeEnv) -> None:
    res = claude_env.command(*claude_env.claude_argv("--version"))
    assert res.stdout.startswith(CLAUDE_VERSION)


def test_two_turn_run_with_throwaway_plugin(claude_env: ClaudeEnv, tmp_path: Path) -> None:
    plugin = make_recorder_plugin(tmp_path / "recorder")
    hook_log = tmp_path / "hooks.jsonl"
    res = claude_env.run(
        "Please say hi using bash", script=TWO_TURNS, plugin_dir=plugin, env={"E2E_HOOK_LOG": str(hook_log)}
    )
    out = res.output
    assert out["type"] == "result" and out["subtype"] == "success" and not out["is_error"]
    assert out["num_turns"] == 2 and out["result"] == "All done."

    # (a) exactly two requests, both /v1/messages for the model asked for; nothing else reached the mock
    assert len(res.requests) == 2, [r["raw_path"] for r in res.requests]
    assert all(r["kind"] == "messages" and r["body"]["stream"] is True for r in res.requests)
    assert res.models_requested == [DEFAULT_MODEL, DEFAULT_MODEL]
    assert "Please say hi using bash" in request_text(res.requests[0])
    assert "hi" in request_text(res.requests[1])  # the Bash tool_result went back to the model
    assert res.requests[0]["headers"]["x-api-key"] == "sk-ant-test"

    # (b) the result's usage equals the scripted sums
    want = usage_totals(TWO_TURNS)
    assert {k: out["usage"][k] for k in USAGE_KEYS} == want
    mu = out["modelUsage"][DEFAULT_MODEL]
    assert (
        mu["inputTokens"],
        mu["outputTokens"],
        mu["cacheReadInputTokens"],
        mu["cacheCreationInputTokens"],
    ) == (
        want["input_tokens"],
        want["output_tokens"],
        want["cache_read_input_tokens"],
        want["cache_creation_input_tokens"],
    )

    # (c) the throwaway hooks saw every event, with the Bash call
    hooks = read_jsonl(hook_log)
    seen = [h["event"] for h in hooks]
    for ev in ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"):
        assert ev in seen, seen
    by = {h["event"]: h["payload"] for h in hooks}
    assert by["UserPromptSubmit"]["prompt"] == "Please say hi using bash"
    assert by["PreToolUse"]["tool_name"] == "Bash" and by["PreToolUse"]["tool_input"]["command"] == "echo hi"
    assert by["PostToolUse"]["tool_response"]["stdout"].strip() == "hi"
    assert by["Stop"]["last_assistant_message"] == "All done."
    assert all(h["payload"]["session_id"] == res.session_id for h in hooks)
    assert (
        seen.index("SessionStart")
        < seen.index("UserPromptSubmit")
        < seen.index("PreToolUse")
        < seen.index("PostToolUse")
        < seen.index("Stop")
    )
    assert hooks[0]["env"]["CLAUDE_PLUGIN_ROOT"] == str(plugin)

    # (d) the transcript holds the mock's message ids and request ids
    assert res.transcript is not None and res.transcript.parent.parent == res.home / "projects"
    assert by["Stop"]["transcript_path"] == str(res.transcript)
    assistant = res.assistant_entries()
    sent = {(r["message_id"], r["request_id"]) for r in res.requests}
    got = {(a["message"]["id"], a["requestId"]) for a in assistant}
    assert got == sent
    last = {a["message"]["id"]: a["message"]["usage"] for a in assistant}
    for r in res.requests:
        assert {k: last[r["message_id"]][k] for k in USAGE_KEYS} == {
            k: r["response_usage"][k] for k in USAGE_KEYS
        }
    assert res.outside_connections == [] and res.network_errors == []
    assert any(c.port == 18777 for c in res.connections)  # strace did see the CLI's loopback traffic

    # the pinned ccusage, run offline over this HOME, agrees on tokens and cost
    daily = claude_env.ccusage("daily", "--json", "--offline").json()
    assert (
        daily["totals"]["inputTokens"],
        daily["totals"]["outputTokens"],
        daily["totals"]["cacheReadTokens"],
        daily["totals"]["cacheCreationTokens"],
    ) == (
        want["input_tokens"],
        want["output_tokens"],
        want["cache_read_input_tokens"],
        want["cache_creation_input_tokens"],
    )
    assert daily["totals"]["totalCost"] == pytest.approx(out["total_cost_usd"], rel=1e-9)


def test_stream_json_and_resume_keep_ids_unique(claude_env: ClaudeEnv) -> None:
    first = claude_env.run(
        "first", script=[text_turn("one", input_tokens=11, output_tokens=3)], output_format="stream-json"
    )
    assert first.events[0]["type"] == "system" and first.result_event["result"] == "one"
    second = claude_env.run(
        "second", script=[text_turn("two", input_tokens=13, output_tokens=4)], resume=first.session_id
    )
    assert second.session_id == first.session_id
    assert "first" in request_text(second.requests[0])  # the history was replayed to the model
    ids = [a["message"]["id"] for a in second.assistant_entries()]
    assert len(ids) == len(set(ids)) == 2  # a restarted mock never reuses a message id


def test_benchmarks_can_run_the_cli_without_a_tracer(e2e_binaries: Binaries, tmp_path: Path) -> None:
    """strace -f stops every process the CLI starts (the hooks too), so bench_cli runs without it: the commands'
    processes then have no tracer, and the namespace is still checked."""
    status = [bash_turn("grep TracerPid /proc/self/status"), text_turn("ok")]
    traced = ClaudeEnv(tmp_path / "traced", e2e_binaries).run("Show the tracer", script=status)
    untraced = ClaudeEnv(tmp_path / "untraced", e2e_binaries, trace_network=False).run("Show the tracer",
                                                                                       script=status)
    assert "TracerPid:\t0" not in request_text(traced.message_requests[1])
    assert "TracerPid:\t0" in request_text(untraced.message_requests[1])
    assert untraced.connections == [] and not (untraced.run_dir / "claude.strace").exists()


def test_marketplace_add_and_install_offline(claude_env: ClaudeEnv, tmp_path: Path) -> None:
    src = make_recorder_plugin(tmp_path / "mkt", name="e2e-recorder", marketplace="e2e-local")
    steps = claude_env.install_plugin(src)
    assert all(s.returncode == 0 and s.outside_connections == [] for s in steps)
    settings = json.loads((claude_env.config_dir / "settings.json").read_text())
    assert settings["enabledPlugins"] == {"e2e-recorder@e2e-local": True}
    assert "e2e-local" in settings["extraKnownMarketplaces"]
    cached = claude_env.config_dir / "plugins" / "cache" / "e2e-local" / "e2e-recorder" / "0.1.0"
    assert (cached / "hooks" / "hooks.json").is_file()
    listed = claude_env.command(*claude_env.claude_argv("plugin", "list", "--json")).json()
    assert any("e2e-recorder@e2e-local" in json.dumps(p) for p in listed)

    # the installed copy's hooks fire in a normal run (no --plugin-dir)
    hook_log = tmp_path / "hooks.jsonl"
    res = claude_env.run("hello", script=[text_turn("hi")], env={"E2E_HOOK_LOG": str(hook_log)})
    hooks = read_jsonl(hook_log)
    assert {"SessionStart", "UserPromptSubmit", "Stop"} <= {h["event"] for h in hooks}
    # Observed on 2.1.332: install copies the plugin to plugins/cache/…/0.1.0 (installed_plugins.json's
    # installPath), yet for a *directory* marketplace the hooks load from, and CLAUDE_PLUGIN_ROOT points at,
    # the marketplace directory itself.
    assert hooks[0]["env"]["CLAUDE_PLUGIN_ROOT"] in (str(src), str(cached))
    assert hooks[0]["env"]["CLAUDE_PLUGIN_ROOT"] == str(src)
    assert res.output["result"] == "hi"


def test_network_guard_fires_on_outside_traffic(claude_env: ClaudeEnv) -> None:
    # Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC the CLI looks up api.anthropic.com (DNS to the host's
    # resolver) and fetches feature flags: the guard must catch it.
    with pytest.raises(NetworkGuardError, match="beyond loopback"):
        claude_env.run("hi", script=[text_turn("hi")], env={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": None})
    res = claude_env.run(
        "hi",
        script=[text_turn("hi")],
        env={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": None},
        check_network=False,
    )
    assert any(c.port == 53 or not c.address.startswith("127.") for c in res.outside_connections)


def test_network_guard_catches_a_plain_outside_connect(claude_env: ClaudeEnv) -> None:
    # Any process in the run is traced (hooks too): a direct TCP connect to a public address is caught.
    probe = (
        "import socket\ns = socket.socket()\ns.settimeout(1)\n"
        "try:\n    s.connect(('192.0.2.1', 443))\nexcept OSError:\n    pass\n"
    )
    with pytest.raises(NetworkGuardError, match=r"192\.0\.2\.1"):
        claude_env.command(claude_env.python, "-c", probe)
