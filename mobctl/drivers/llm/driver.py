"""``llm``: a member's turn asks its model (Anthropic, OpenAI, Gemini, or an
OpenAI-compatible server), with the profile's skills as the system prompt, its MCP servers
(and, with ``--allow-shell``, a shell) as tools, provider-native structured output for JSON
steps, retries within the turn's deadline, usage and a transcript per turn.

One asyncio event loop in a driver-owned thread runs every turn of the run: the SDKs' async
clients and the MCP sessions live on it. :meth:`LlmDriver.run` submits the turn and waits;
when ``stop`` is set (the turn's timeout or a cancel) the turn's task is cancelled, which
aborts the in-flight HTTP request and kills a running shell command, and ``run`` returns
:class:`Canceled` within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mobctl.drivers.base import (
    Canceled,
    Completed,
    Failed,
    Member,
    Outcome,
    TurnProfile,
    TurnRequest,
)
from mobctl.drivers.llm import structured
from mobctl.drivers.llm.conversation import ProviderClient, ProviderFailure, TurnInput
from mobctl.drivers.llm.mcp_servers import McpServers, McpStartError
from mobctl.drivers.llm.options import LlmOptions
from mobctl.drivers.llm.providers import Endpoint, endpoint, open_client, require_sdk
from mobctl.drivers.llm.tools import Toolbox
from mobctl.drivers.llm.transcript import Transcript, redact
from mobctl.drivers.llm.turn import run_turn
from mobctl.errors import MobctlError

POLL = 0.05  # how often a waiting run() looks at its stop event
CANCEL_GRACE = 5.0  # for a cancelled turn to close its connection and kill its command
CLOSE_TIMEOUT = 30.0
# [tools] families that are Meerkat-runtime features (a warning names those a profile asks for)
RUNTIME_FAMILIES = ("builtins", "comms", "memory", "workgraph", "mob", "schedule")
# a shell command sees the environment without anything that looks like a credential
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")


class LlmDriver:
    def __init__(
        self,
        options: LlmOptions | None = None,
        *,
        env: Mapping[str, str],
        allow_shell: bool = False,
        allow_mcp: bool = False,
        workdir: Path | None = None,
    ) -> None:
        """``env``: where credentials and base URLs come from (the CLI passes the process
        environment); ``allow_shell``: ``--allow-shell``; ``allow_mcp``: ``--allow-mcp``
        (stdio MCP servers, programs a definition names, are started only with it);
        ``workdir``: where shell commands and stdio MCP servers run."""
        self.options = options or LlmOptions()
        self._env = dict(env)
        self._allow_shell = allow_shell
        self._allow_mcp = allow_mcp
        self._workdir = workdir or Path.cwd()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._clients: dict[Endpoint, ProviderClient] = {}
        self._toolboxes: dict[tuple[str, int], asyncio.Task[Toolbox]] = {}

    # --- the run's lifecycle -----------------------------------------------------------------

    def preflight(self, profiles: list[TurnProfile]) -> list[str]:
        """Raise ``invalid_driver`` (an SDK is missing) or ``missing_credentials``; return
        the warnings to show once: parameters a provider has no field for, tool families
        mobctl does not provide, a shell not granted."""
        warnings: list[str] = []
        targets = []
        for profile in map(self._effective, profiles):
            api = require_sdk(profile)
            targets.append(endpoint(profile, self._env))
            name, params, tools = profile.name, profile.provider_params, profile.tools
            ignored = sorted(set(params) - api.supported_params - {"provider_tag"})
            if ignored:
                warnings.append(
                    f"profile '{name}': {api.name} has no field for provider_params "
                    f"{', '.join(ignored)}; ignored"
                )
            if "provider_tag" in params:
                warnings.append(
                    f"profile '{name}': provider_params.provider_tag is not used by the llm driver"
                )
            families = [family for family in RUNTIME_FAMILIES if tools.get(family)]
            families += [key for key in ("image_generation", "rust_bundles") if tools.get(key)]
            if tools.get("mcp"):
                families.append("mcp (host servers)")
            if families:
                warnings.append(
                    f"profile '{name}': the {', '.join(families)} tools are Meerkat-runtime "
                    "features; the llm driver does not provide them"
                )
            programs = [str(s.get("name", "?")) for s in self._stdio_servers(tools)]
            if programs and not self._allow_mcp:
                warnings.append(
                    f"profile '{name}' names stdio MCP servers ({', '.join(programs)}): "
                    "programs a definition names are not started (run with --allow-mcp)"
                )
            if tools.get("shell") and not self._allow_shell:
                warnings.append(
                    f"profile '{name}' asks for a shell; not granted (run with --allow-shell)"
                )
            elif tools.get("shell") and tools.get("read_only"):
                warnings.append(
                    f"profile '{name}' is read_only: mobctl cannot confine a shell to reads, so "
                    "it offers no shell tool"
                )
        loop = self._event_loop()
        if loop is not None:  # import the SDKs and make their clients now, not in a turn
            asyncio.run_coroutine_threadsafe(self._open(targets), loop).result()
        return list(dict.fromkeys(warnings))

    async def _open(self, targets: list[Endpoint]) -> list[ProviderClient]:
        opened = []
        for target in targets:
            if target not in self._clients:
                self._clients[target] = open_client(target)
            opened.append(self._clients[target])
        return opened

    def close(self) -> None:
        """Stop every MCP server and close the SDK clients (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(CLOSE_TIMEOUT)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            future.cancel()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_TIMEOUT)
        if not thread.is_alive():
            loop.close()

    async def _shutdown(self) -> None:
        boxes = []
        for task in self._toolboxes.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled() and task.exception() is None:
                boxes.append(task.result())
        await asyncio.gather(*(box.stop() for box in boxes), return_exceptions=True)
        await asyncio.gather(
            *(client.aclose() for client in self._clients.values()), return_exceptions=True
        )

    def _event_loop(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            if self._closed:
                return None
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="mobctl-llm", daemon=True
                )
                self._thread.start()
            return self._loop

    # --- a turn ------------------------------------------------------------------------------

    def _effective(self, profile: TurnProfile) -> TurnProfile:
        model = self.options.model
        return dataclasses.replace(profile, model=model) if model else profile

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        if request.profile is None:
            return Failed("the llm driver needs the member's profile on the turn request")
        profile = self._effective(request.profile)
        try:
            require_sdk(profile)
            target = endpoint(profile, self._env)
        except MobctlError as exc:
            return Failed(exc.message)
        message = _message_text(request)
        if message is None:
            return Failed("the llm driver sends text only; this message has image or video blocks")
        loop = self._event_loop()
        if loop is None:
            return Failed("the llm driver is closed: the run is over")
        started = time.monotonic()
        deadline = started + request.timeout_ms / 1000
        transcript = Transcript(
            provider=str(profile.provider),
            api=target.api.name,
            model=profile.model,
            system_prompt=profile.system_prompt,
        )
        transcript.user(message)
        began, settled = threading.Event(), threading.Event()

        async def turn() -> Completed | Failed:
            began.set()
            try:
                return await self._turn(request, profile, target, message, deadline, transcript)
            finally:
                settled.set()

        future = asyncio.run_coroutine_threadsafe(turn(), loop)
        while not settled.wait(POLL):
            if stop.is_set():
                future.cancel()
                if began.is_set():  # else it never runs: nothing to clean up
                    settled.wait(CANCEL_GRACE)
                return Canceled(transcript=self._finish(transcript, "canceled", started))
        outcome = future.result(CANCEL_GRACE)  # settled: the result follows at once
        if isinstance(outcome, Completed):
            record = self._finish(transcript, "completed", started, final_answer=outcome.output)
            return dataclasses.replace(outcome, transcript=record)
        reason = redact(outcome.reason, self._secrets())
        record = self._finish(transcript, "failed", started, error=reason)
        return dataclasses.replace(outcome, reason=reason, transcript=record)

    async def _turn(
        self,
        request: TurnRequest,
        profile: TurnProfile,
        target: Endpoint,
        message: str,
        deadline: float,
        transcript: Transcript,
    ) -> Completed | Failed:
        try:
            toolbox = await self._toolbox(request.member, profile)
            offered = toolbox.offered(request)
            transcript.offer([spec.name for spec in offered])
            schema = structured.wanted_schema(request)
            (client,) = await self._open([target])
            conversation = client.conversation(
                TurnInput(
                    model=profile.model,
                    system=profile.system_prompt,
                    message=message,
                    tools=offered,
                    schema=schema,
                    json_wanted=request.output_format == "json",
                    params=profile.provider_params,
                )
            )
            return await run_turn(
                conversation,
                toolbox=toolbox,
                offered=offered,
                json_wanted=request.output_format == "json",
                schema=schema,
                deadline=deadline,
                call_timeout=profile.call_timeout_secs,
                max_tool_rounds=self.options.max_tool_rounds,
                transcript=transcript,
            )
        except (ProviderFailure, McpStartError) as exc:
            return Failed(str(exc), usage=transcript.usage)
        except Exception as exc:  # an SDK's surprise must fail the turn, not the whole run
            return Failed(
                f"{profile.provider}: {type(exc).__name__}: {exc}", usage=transcript.usage
            )

    async def _toolbox(self, member: Member, profile: TurnProfile) -> Toolbox:
        """The member's tools, started on its first turn and shared by its later ones."""
        key = (member.identity, member.generation)
        task = self._toolboxes.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._toolboxes[key] = asyncio.ensure_future(self._start_toolbox(profile))
        return await asyncio.shield(task)

    async def _start_toolbox(self, profile: TurnProfile) -> Toolbox:
        tools = profile.tools
        configs: list[dict[str, Any]] = list(tools.get("mcp_servers") or [])
        if not self._allow_mcp:  # a program a definition names runs only with --allow-mcp
            stdio = self._stdio_servers(tools)
            configs = [config for config in configs if config not in stdio]
        servers = McpServers(configs, env=self._env, workdir=self._workdir) if configs else None
        toolbox = Toolbox(
            servers,
            shell_granted=self._allow_shell
            and bool(tools.get("shell"))
            and not tools.get("read_only"),
            workdir=self._workdir,
            shell_env={
                key: value
                for key, value in self._env.items()
                if not any(word in key.upper() for word in SECRET_WORDS)
            },
        )
        await toolbox.start()
        return toolbox

    @staticmethod
    def _stdio_servers(tools: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The profile's MCP servers that are programs to start (``command``), not URLs."""
        servers = tools.get("mcp_servers") or []
        return [s for s in servers if isinstance(s, dict) and s.get("command") is not None]

    def _secrets(self) -> list[str]:
        return [target.api_key for target in self._clients] + [
            value for key, value in self._env.items() if key.upper().endswith("API_KEY") and value
        ]

    def _finish(
        self, transcript: Transcript, outcome: str, started: float, **fields: Any
    ) -> dict[str, Any]:
        return transcript.finish(
            outcome,
            duration_ms=round((time.monotonic() - started) * 1000),
            secrets=self._secrets(),
            **fields,
        )


def _message_text(request: TurnRequest) -> str | None:
    """The turn's message as text (structured blocks as JSON); None if it holds media."""
    if isinstance(request.message, str):
        return request.message
    parts = []
    for block in request.message:
        kind = block.get("type")
        if kind in ("text", "skill_context"):
            parts.append(str(block.get("text", "")))
        elif kind == "structured":
            parts.append(json.dumps(block.get("data"), ensure_ascii=False))
        else:
            return None
    return "\n\n".join(parts)
