"""A fake model provider: a real HTTP server on 127.0.0.1 that speaks enough of Anthropic's
Messages API (``/v1/messages``), OpenAI's Responses (``/v1/responses``) and Chat Completions
(``/v1/chat/completions``) and Gemini's generateContent (``/{version}/models/M:generateContent``)
for the real SDKs, pointed at it by base URL, to work. No SDK is mocked.

Each test scripts the replies (a queue, then a default) and reads back every request. A
reply is :class:`Text`, :class:`Calls` (tool calls), :class:`Status` (an error status with
headers such as Retry-After) or :class:`Hang` (no answer until the client gives up); each may
wait ``delay`` seconds first. A client that closes its connection while waiting is counted
in ``disconnects``.
"""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Text:
    text: str
    delay: float = 0.0
    usage: tuple[int, int, int, int] = (11, 7, 3, 2)  # input, output, cache read, cache write


@dataclass(frozen=True)
class Calls:
    calls: list[tuple[str, dict[str, Any]]]
    text: str = ""
    delay: float = 0.0
    usage: tuple[int, int, int, int] = (11, 7, 0, 0)


@dataclass(frozen=True)
class Status:
    code: int
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Hang:
    delay: float = 3600.0


Reply = Text | Calls | Status | Hang


@dataclass(frozen=True)
class Recorded:
    api: str  # anthropic | responses | chat | gemini
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived


def env_for(url: str) -> dict[str, str]:
    """An environment pointing every provider at the server at ``url``, with test keys."""
    return {
        "ANTHROPIC_API_KEY": "sk-ant-test-secret",
        "ANTHROPIC_BASE_URL": url,
        "OPENAI_API_KEY": "sk-openai-test-secret",
        "OPENAI_BASE_URL": f"{url}/v1",
        "GEMINI_API_KEY": "gemini-test-secret",
        "GOOGLE_GEMINI_BASE_URL": url,
        "MOBCTL_SELF_HOSTED_LOCAL_URL": f"{url}/v1",
    }


def api_of(path: str) -> str | None:
    if path == "/v1/messages":
        return "anthropic"
    if path == "/v1/responses":
        return "responses"
    if path == "/v1/chat/completions":
        return "chat"
    if path.endswith(":generateContent") and "/models/" in path:
        return "gemini"
    return None


class FakeProvider:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self.default: Reply | Callable[[Recorded], Reply] = Text("ok")
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def env(self) -> dict[str, str]:
        return env_for(self.url)

    def next_id(self) -> int:
        return next(self._ids)

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        return self.default(request) if callable(self.default) else self.default

    def _gone(self) -> None:
        with self._lock:
            self.disconnects += 1
        self.disconnected.set()

    def close(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 drops the SYNs of 100 clients connecting at once


def _handler(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every answer
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            api = api_of(path)
            if api is None:
                self._send(404, {"error": {"message": f"no route {path}"}}, {})
                return
            recorded = Recorded(
                api,
                path,
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw or b"{}"),
                time.monotonic(),
            )
            reply = fake._next(recorded)
            wait = reply.delay
            if wait and not self._wait(wait):
                fake._gone()
                self.close_connection = True
                return
            if isinstance(reply, Hang):
                self.close_connection = True
                return
            if isinstance(reply, Status):
                self._send(reply.code, _error(api, reply), reply.headers)
                return
            body, headers = _render(api, reply, recorded, fake.next_id())
            self._send(200, body, headers)

        def _wait(self, seconds: float) -> bool:
            """Wait; False if the client closed the connection meanwhile."""
            deadline = time.monotonic() + seconds
            connection: socket.socket = self.connection
            while not fake._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                readable, _, _ = select.select([connection], [], [], min(remaining, 0.5))
                if readable:
                    try:
                        if connection.recv(1, socket.MSG_PEEK) == b"":
                            return False
                    except OSError:
                        return False
                    time.sleep(min(remaining, 0.02))  # bytes of a next request: keep waiting
            return True

        def _send(self, code: int, body: Any, headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                fake._gone()

    return Handler


def _error(api: str, reply: Status) -> dict[str, Any]:
    if api == "anthropic":
        kind = "overloaded_error" if reply.code == 529 else "api_error"
        return {"type": "error", "error": {"type": kind, "message": reply.message}}
    if api == "gemini":
        return {"error": {"code": reply.code, "message": reply.message, "status": "ERROR"}}
    return {"error": {"message": reply.message, "type": "error", "code": None}}


def _calls(reply: Text | Calls) -> Iterator[tuple[int, str, dict[str, Any]]]:
    if isinstance(reply, Calls):
        for index, (name, arguments) in enumerate(reply.calls):
            yield index, name, arguments


def _render(
    api: str, reply: Text | Calls, request: Recorded, n: int
) -> tuple[dict[str, Any], dict[str, str]]:
    text = reply.text
    model = request.body.get("model", request.path.rsplit("/", 1)[-1].split(":")[0])
    i, o, cr, cw = reply.usage
    calling = isinstance(reply, Calls)
    if api == "anthropic":
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        content += [
            {"type": "tool_use", "id": f"toolu_{n}_{k}", "name": name, "input": args}
            for k, name, args in _calls(reply)
        ]
        return {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if calling else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": i,
                "output_tokens": o,
                "cache_read_input_tokens": cr,
                "cache_creation_input_tokens": cw,
            },
        }, {"request-id": f"req_anthropic_{n}"}
    if api == "responses":
        output: list[dict[str, Any]] = []
        if text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{n}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            )
        output += [
            {
                "type": "function_call",
                "id": f"fc_{n}_{k}",
                "call_id": f"call_{n}_{k}",
                "name": name,
                "arguments": json.dumps(args),
                "status": "completed",
            }
            for k, name, args in _calls(reply)
        ]
        return {
            "id": f"resp_{n}",
            "object": "response",
            "created_at": 0,
            "model": model,
            "status": "completed",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": i,
                "output_tokens": o,
                "total_tokens": i + o,
                "input_tokens_details": {"cached_tokens": cr, "cache_write_tokens": cw},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }, {"x-request-id": f"req_responses_{n}"}
    if api == "chat":
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        calls = [
            {
                "id": f"call_{n}_{k}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for k, name, args in _calls(reply)
        ]
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calling else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": i,
                "completion_tokens": o,
                "total_tokens": i + o,
                "prompt_tokens_details": {"cached_tokens": cr, "cache_write_tokens": cw},
            },
        }, {"x-request-id": f"req_chat_{n}"}
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    parts += [
        {"functionCall": {"id": f"call_{n}_{k}", "name": name, "args": args}}
        for k, name, args in _calls(reply)
    ]
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": i,
            "candidatesTokenCount": o,
            "totalTokenCount": i + o,
            "cachedContentTokenCount": cr,
        },
        "modelVersion": model,
        "responseId": f"gemini_{n}",
    }, {}


if __name__ == "__main__":  # a server of its own (benchmarks): prints its URL, stops at EOF
    import sys

    server = FakeProvider()
    server.default = Text("done", delay=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    print(server.url, flush=True)
    sys.stdin.read()
    server.close()
