"""A real stdio MCP server, written with the official ``mcp`` SDK (``MCPServer``, formerly
FastMCP), for the llm driver's tests: ``python tests/fakes/mcp_server.py`` (stdio), or
``python tests/fakes/mcp_server.py --http PORT`` (streamable HTTP on 127.0.0.1:PORT/mcp)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from mcp.server.mcpserver import MCPServer

app = MCPServer("mobctl-test-tools")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@app.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ValueError(message)


@app.tool()
def pids() -> str:
    """This server's process id and that of a child it started (which sleeps). From now on
    the server also outlives its stdin (a thread keeps it alive), as a badly behaved server
    would: only a signal stops it."""
    child = subprocess.Popen(["sleep", "3600"])
    threading.Thread(target=time.sleep, args=(3600,)).start()
    return f"{os.getpid()} {child.pid}"


@app.tool()
def nap(seconds: float) -> str:
    """Sleep, then say so."""
    time.sleep(seconds)
    return "rested"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--http"]:
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        app.run()
