"""A member's MCP servers (``tools.mcp_servers``), started once with the official ``mcp``
SDK and reused by every turn of that member in the run.

Each stdio server runs under the launcher in its own process group, so it is stopped when
the run ends or is canceled (:meth:`McpServers.stop`, the SDK's shutdown: stdin closed, then
SIGTERM, then SIGKILL to the group) and also when mobctl itself is killed. HTTP servers are
reached over streamable HTTP or SSE. The SDK's client contexts are entered and left by one
owner task (anyio scopes belong to the task that entered them); turns call tools from their
own tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import IO, Any

from mobctl.drivers.llm.conversation import ToolSpec
from mobctl.drivers.llm.shell import launched

CONNECT_TIMEOUT = 30.0  # seconds, unless the server sets connect_timeout_secs
OUTPUT_CAP = 64 * 1024  # of one tool result, in characters
STOP_TIMEOUT = 10.0
# what a stdio server inherits from mobctl's environment (never a credential)
INHERITED = ("HOME", "LANG", "LC_ALL", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "USER")


class McpStartError(Exception):
    """A server did not start or did not list its tools."""


class McpServers:
    def __init__(
        self, configs: list[dict[str, Any]], *, env: Mapping[str, str], workdir: Path
    ) -> None:
        self._configs = configs
        self._env = {key: env[key] for key in INHERITED if key in env}
        self._workdir = workdir
        self.tools: list[ToolSpec] = []
        self._route: dict[str, Any] = {}  # tool name -> the mcp Client that owns it
        self._closing = asyncio.Event()
        self._owner: asyncio.Task[None] | None = None
        self._logs: list[IO[str]] = []

    async def start(self) -> None:
        """Start every server and list its tools; :class:`McpStartError` if one fails."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._serve(ready))
        try:
            await asyncio.shield(ready)
        except asyncio.CancelledError:
            await self.stop()
            raise

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                for config in self._configs:
                    await self._connect(stack, config)
                ready.set_result(None)
                await self._closing.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(McpStartError(self._explain(exc)))
        except asyncio.CancelledError:
            if not ready.done():
                ready.set_exception(McpStartError("canceled while starting"))
            raise
        finally:
            for log in self._logs:
                log.close()

    async def _connect(self, stack: AsyncExitStack, config: dict[str, Any]) -> None:
        from mcp import Client

        name = config["name"]
        timeout = config.get("connect_timeout_secs") or CONNECT_TIMEOUT
        try:
            async with asyncio.timeout(timeout):
                client = await stack.enter_async_context(Client(self._transport(config)))
                tools = await _list_tools(client)
        except TimeoutError as exc:
            raise McpStartError(f"MCP server '{name}' did not answer within {timeout}s") from exc
        except Exception as exc:
            raise McpStartError(
                f"MCP server '{name}' failed to start: {self._explain(exc)}"
            ) from exc
        for tool in tools:
            if tool.name in self._route:
                continue  # two servers with one tool name: the first declared serves it
            self._route[tool.name] = client
            self.tools.append(ToolSpec(tool.name, tool.description or "", dict(tool.input_schema)))

    def _transport(self, config: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        if "command" in config:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            # closed by _serve when the servers stop
            log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            self._logs.append(log)
            argv = launched([config["command"], *config.get("args", [])])
            parameters = StdioServerParameters(
                command=argv[0],
                args=argv[1:],
                env=self._env | dict(config.get("env", {})),
                cwd=self._workdir,
            )
            return stdio_client(parameters, errlog=log)
        headers = dict(config.get("headers", {}))
        if config.get("transport") == "sse":
            from mcp.client.sse import sse_client

            return sse_client(config["url"], headers=headers)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        return streamable_http_client(
            config["url"], http_client=httpx2.AsyncClient(headers=headers, timeout=30.0)
        )

    def _explain(self, exc: BaseException) -> str:
        """The exception and, for a stdio server, the last line it wrote to stderr."""
        if isinstance(exc, McpStartError):
            return str(exc)
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        for log in self._logs[-1:]:
            with contextlib.suppress(OSError, ValueError):
                log.seek(0)
                lines = [line.strip() for line in log.read().splitlines() if line.strip()]
                if lines:
                    text += f" (its stderr: {lines[-1][:300]})"
        return text

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> tuple[str, bool]:
        """The tool's result as text, and whether it is an error."""
        client = self._route[name]
        try:
            result = await client.call_tool(name, arguments, read_timeout_seconds=timeout)
        except Exception as exc:
            return f"the MCP call failed: {type(exc).__name__}: {exc}", True
        return _text(result.content, result.structured_content), bool(result.is_error)

    async def stop(self) -> None:
        """Stop every server (idempotent); bounded even if one hangs."""
        self._closing.set()
        if self._owner is None:
            return
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._owner), STOP_TIMEOUT)
        if not self._owner.done():
            self._owner.cancel()
            with contextlib.suppress(BaseException):
                await self._owner


async def _list_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(100):  # a paginator that never ends cannot hang the turn
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _text(content: list[Any], structured: Any) -> str:
    parts = [
        block.text
        if getattr(block, "type", None) == "text"
        else block.model_dump_json(exclude_none=True)
        for block in content
    ]
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(parts)
    if len(text) > OUTPUT_CAP:
        text = text[:OUTPUT_CAP] + f"\n[output capped: {len(text) - OUTPUT_CAP} more characters]"
    return text
