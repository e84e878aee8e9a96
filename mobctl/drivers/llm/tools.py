"""The tools one member can use: its MCP servers and, when granted, the shell; filtered per
turn by the step's ``allowed_tools`` / ``blocked_tools``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from mobctl.drivers.base import TurnRequest
from mobctl.drivers.llm import shell
from mobctl.drivers.llm.conversation import ToolCall, ToolResult, ToolSpec
from mobctl.drivers.llm.mcp_servers import McpServers


class Toolbox:
    def __init__(
        self,
        servers: McpServers | None,
        *,
        shell_granted: bool,
        workdir: Path,
        shell_env: Mapping[str, str],
    ) -> None:
        self._servers = servers
        self._shell = shell_granted
        self._workdir = workdir
        self._shell_env = shell_env

    async def start(self) -> None:
        if self._servers is not None:
            await self._servers.start()

    async def stop(self) -> None:
        if self._servers is not None:
            await self._servers.stop()

    @property
    def specs(self) -> list[ToolSpec]:
        specs = list(self._servers.tools) if self._servers is not None else []
        if self._shell and all(s.name != shell.SPEC.name for s in specs):
            specs.append(shell.SPEC)
        return specs

    def offered(self, request: TurnRequest) -> list[ToolSpec]:
        """What the model may see this turn."""
        allowed, blocked = request.allowed_tools, set(request.blocked_tools or ())
        return [
            spec
            for spec in self.specs
            if (allowed is None or spec.name in allowed) and spec.name not in blocked
        ]

    async def call(self, call: ToolCall, offered: list[ToolSpec], deadline: float) -> ToolResult:
        if all(spec.name != call.name for spec in offered):
            return ToolResult(call, f"there is no tool named {call.name!r} in this turn", True)
        if "_unparsable_arguments" in call.arguments:
            return ToolResult(call, "the arguments are not a JSON object", True)
        remaining = max(deadline - time.monotonic(), 0.1)
        if call.name == shell.SPEC.name and self._shell:
            command = call.arguments.get("command")
            if not isinstance(command, str) or not command.strip():
                return ToolResult(call, "the shell tool needs a 'command' string", True)
            output, failed = await shell.run_shell(
                command, workdir=self._workdir, env=self._shell_env, timeout=remaining
            )
            return ToolResult(call, output, failed)
        assert self._servers is not None
        output, failed = await self._servers.call(call.name, call.arguments, remaining)
        return ToolResult(call, output, failed)
