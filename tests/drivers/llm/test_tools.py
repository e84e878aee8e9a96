"""Tools: a real stdio MCP server (tests/fakes/mcp_server.py) started once per member and
stopped with the run, the step's tool filters, the tool-round limit, and the shell."""

from __future__ import annotations

import json
import os
import sys

import pytest

from mobctl.drivers.base import Completed, Failed, Member
from mobctl.drivers.llm.options import LlmOptions
from tests.drivers.llm.conftest import MCP_SERVER, PROVIDERS, mcp_tools, profile, request, run
from tests.fakes.provider_server import Calls, Text

GENEROUS = 60.0


def tool_names(api: str, body: dict) -> list[str]:
    tools = body.get("tools", [])
    if api == "anthropic" or api == "responses":
        return sorted(t["name"] for t in tools)
    if api == "chat":
        return sorted(t["function"]["name"] for t in tools)
    return sorted(d["name"] for t in tools for d in t["functionDeclarations"])


def tool_result_sent(api: str, body: dict) -> object:
    """The output of the first tool result in a request."""
    if api == "anthropic":
        return body["messages"][-1]["content"][0]["content"]
    if api == "responses":
        return next(i["output"] for i in body["input"] if i.get("type") == "function_call_output")
    if api == "chat":
        return body["messages"][-1]["content"]
    part = body["contents"][-1]["parts"][0]
    return (part.get("functionResponse") or part["function_response"])["response"]["output"]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pids: list[int]) -> list[int]:
    import time

    deadline = time.monotonic() + GENEROUS
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_model_calls_an_mcp_tool_and_gets_its_result(fake, make_driver, provider) -> None:
    api = PROVIDERS[provider][1]
    fake.script(Calls([("add", {"a": 2, "b": 3})], text="Let me add."), Text("It is 5."))
    outcome = run(make_driver(), request(profile(provider, tools=mcp_tools())))
    assert isinstance(outcome, Completed)
    assert outcome.output == "It is 5."
    first, second = fake.requests
    assert tool_names(api, first.body) == ["add", "echo", "fail", "nap", "pids"]
    assert tool_result_sent(api, second.body) == "5"
    record = outcome.transcript
    assert record["tools"] == ["add", "echo", "fail", "pids", "nap"]  # as the server lists them
    (tool,) = [m for m in record["messages"] if m["role"] == "tool"]
    assert (tool["name"], tool["arguments"], tool["result"], tool["is_error"]) == (
        "add",
        {"a": 2, "b": 3},
        "5",
        False,
    )
    calls = next(m for m in record["messages"] if m["role"] == "assistant")["tool_calls"]
    assert [(c["name"], c["arguments"]) for c in calls] == [("add", {"a": 2, "b": 3})]


def test_a_failing_tool_reports_an_error_result_to_the_model(fake, make_driver) -> None:
    fake.script(Calls([("fail", {"message": "boom"})]), Text("I see it failed."))
    outcome = run(make_driver(), request(profile(tools=mcp_tools())))
    assert isinstance(outcome, Completed)
    result = fake.requests[1].body["messages"][-1]["content"][0]
    assert result["is_error"] is True
    assert result["content"] == "Error executing tool fail"


def test_allowed_and_blocked_tools_filter_what_the_model_sees(fake, make_driver) -> None:
    driver = make_driver()
    tools = profile(tools=mcp_tools())
    run(driver, request(tools, allowed_tools=["add", "echo", "nap"], blocked_tools=["nap"]))
    assert tool_names("anthropic", fake.requests[0].body) == ["add", "echo"]
    fake.script(Calls([("pids", {})]), Text("could not"))
    outcome = run(driver, request(tools, blocked_tools=["pids"]))
    assert isinstance(outcome, Completed)
    result = fake.requests[2].body["messages"][-1]["content"][0]
    assert result["content"] == "there is no tool named 'pids' in this turn"
    assert result["is_error"] is True


def test_past_max_tool_rounds_the_turn_fails(fake, make_driver) -> None:
    fake.default = Calls([("echo", {"text": "again"})])
    outcome = run(make_driver(LlmOptions(max_tool_rounds=3)), request(profile(tools=mcp_tools())))
    assert isinstance(outcome, Failed)
    assert outcome.reason == (
        "the model still called tools after max_tool_rounds=3 rounds; the turn stops here "
        "(raise it with --driver llm:max_tool_rounds=N)"
    )
    assert len(fake.requests) == 4
    assert len([m for m in outcome.transcript["messages"] if m["role"] == "tool"]) == 3


def _pids(outcome: Completed | Failed) -> list[int]:
    (tool,) = [m for m in outcome.transcript["messages"] if m["role"] == "tool"]
    return [int(p) for p in tool["result"].split()]


def test_mcp_servers_start_once_per_member_and_stop_at_close(fake, make_driver) -> None:
    driver = make_driver()
    tools = profile(tools=mcp_tools())
    fake.script(Calls([("pids", {})]), Text("one"), Calls([("pids", {})]), Text("two"))
    first = _pids(run(driver, request(tools)))
    second = _pids(run(driver, request(tools)))
    assert first[0] == second[0]  # the same server served both turns
    fake.script(Calls([("pids", {})]), Text("other member"))
    other = _pids(run(driver, request(tools, member=Member("writer-2", 0, "writer"))))
    assert other[0] != first[0]
    everything = [*first, second[1], *other]
    assert all(alive(pid) for pid in everything)
    driver.close()
    assert wait_gone(everything) == []  # the servers, and the children they started


def test_mcp_servers_die_with_a_sigkilled_mobctl(fake, tmp_path) -> None:
    import signal
    import subprocess

    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, threading\n"
        "from mobctl.drivers.llm.driver import LlmDriver\n"
        "from tests.drivers.llm.conftest import mcp_tools, profile, request\n"
        "from tests.fakes.provider_server import Calls, FakeProvider, Text\n"
        "fake = FakeProvider()\n"
        "fake.script(Calls([('pids', {})]), Text('ok'))\n"
        "driver = LlmDriver(env=fake.env() | {'PATH': '/usr/bin:/bin'}, allow_mcp=True)\n"
        "outcome = driver.run(request(profile(tools=mcp_tools())), threading.Event())\n"
        "tool = [m for m in outcome.transcript['messages'] if m['role'] == 'tool'][0]\n"
        "print(tool['result'], flush=True)\n"
        "threading.Event().wait()\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    owner = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": repo},
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(GENEROUS)
    assert wait_gone(pids) == []


def test_an_mcp_server_that_cannot_start_fails_the_turn(fake, make_driver) -> None:
    broken = {"mcp_servers": [{"name": "ghost", "command": "/nonexistent/mcp-server"}]}
    outcome = run(make_driver(), request(profile(tools=broken)))
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("MCP server 'ghost' failed to start: ")
    assert "cannot start '/nonexistent/mcp-server'" in outcome.reason
    assert fake.requests == []


def test_the_shell_runs_only_when_granted(fake, make_driver, tmp_path) -> None:
    shell = profile(tools={"shell": True})
    fake.script(Text("no tools"))
    run(make_driver(), request(shell))
    assert "tools" not in fake.requests[0].body
    fake.script(Text("read only"))
    run(make_driver(allow_shell=True), request(profile(tools={"shell": True, "read_only": True})))
    assert "tools" not in fake.requests[1].body
    (tmp_path / "notes.txt").write_text("hello from the workdir\n")
    fake.script(
        Calls([("shell", {"command": "cat notes.txt; echo ${ANTHROPIC_API_KEY:-no key}; exit 3"})]),
        Text("done"),
    )
    outcome = run(make_driver(allow_shell=True), request(shell))
    assert isinstance(outcome, Completed)
    assert tool_names("anthropic", fake.requests[2].body) == ["shell"]
    (tool,) = [m for m in outcome.transcript["messages"] if m["role"] == "tool"]
    assert tool["arguments"]["command"].startswith("cat notes.txt")
    assert tool["result"] == "exit status 3\nhello from the workdir\nno key\n"
    assert tool["is_error"] is True


def test_a_shell_command_is_capped_and_timed(fake, make_driver) -> None:
    fake.script(
        Calls([("shell", {"command": "head -c 100000 /dev/zero | tr '\\0' x"})]), Text("done")
    )
    outcome = run(make_driver(allow_shell=True), request(profile(tools={"shell": True})))
    (tool,) = [m for m in outcome.transcript["messages"] if m["role"] == "tool"]
    assert tool["result"] == (
        "exit status 0\n" + "x" * 65536 + "\n[output capped: 34464 more bytes dropped]"
    )
    fake.script(Calls([("shell", {"command": "sleep 3600"})]), Text("gave up"))
    outcome = run(
        make_driver(allow_shell=True), request(profile(tools={"shell": True}), timeout_ms=2000)
    )
    (tool,) = [m for m in outcome.transcript["messages"] if m["role"] == "tool"]
    assert tool["result"].startswith("timed out after 2s; killed")
    assert json.dumps(outcome.transcript)


def test_an_http_mcp_server_is_reached_by_url(fake, make_driver) -> None:
    import socket
    import subprocess
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(MCP_SERVER), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + GENEROUS
        while time.monotonic() < deadline:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        web = {"mcp_servers": [{"name": "web", "url": f"http://127.0.0.1:{port}/mcp"}]}
        fake.script(Calls([("echo", {"text": "over http"})]), Text("heard it"))
        outcome = run(make_driver(), request(profile(tools=web)))
        assert isinstance(outcome, Completed), outcome
        assert fake.requests[1].body["messages"][-1]["content"][0]["content"] == "over http"
    finally:
        server.kill()
        server.wait(GENEROUS)


def test_a_stdio_mcp_server_a_definition_names_starts_only_with_allow_mcp(
    fake, make_driver, tmp_path
) -> None:
    """A program named by a definition (a pull request's, say) is not run: without --allow-mcp
    the preflight says so and the model is offered none of its tools."""
    started = tmp_path / "started"
    server = {
        "name": "planted",
        "command": sys.executable,
        "args": ["-c", f"open({str(started)!r}, 'w').close()"],
    }
    member = profile(tools={"mcp_servers": [server]})
    driver = make_driver(allow_mcp=False)
    assert driver.preflight([member]) == [
        "profile 'writer' names stdio MCP servers (planted): programs a definition names are "
        "not started (run with --allow-mcp)"
    ]
    fake.script(Text("done"))
    outcome = run(driver, request(member))
    assert isinstance(outcome, Completed) and outcome.output == "done"
    assert tool_names("anthropic", fake.requests[0].body) == []
    assert not started.exists()
