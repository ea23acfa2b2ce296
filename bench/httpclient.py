"""A small HTTP/1.1 client on asyncio streams, with a bounded keep-alive connection pool.

No dependency: the benchmark's client must not be the bottleneck nor hide anything. Requests
wait for a free connection in the pool; the load generator measures every request from its
*scheduled* time, so this waiting counts in the latency (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field


class HttpError(Exception):
    """The connection failed before a complete response was read."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: int = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken socket
            self.writer.close()


@dataclass
class Pool:
    host: str
    port: int
    size: int = 200
    timeout: float = 60.0
    _idle: list[_Conn] = field(default_factory=list)
    _sem: asyncio.Semaphore | None = None
    reconnects: int = 0
    opened: int = 0

    def __post_init__(self) -> None:
        self._sem = asyncio.Semaphore(self.size)

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 20), self.timeout
        )
        self.opened += 1
        return _Conn(reader, writer)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> Response:
        async with self._sem:
            for attempt in range(3):
                conn = self._idle.pop() if self._idle else await self._connect()
                reused = conn.used > 0
                try:
                    resp, keep = await asyncio.wait_for(self._roundtrip(conn, method, path, headers, body),
                                                        self.timeout)
                except TimeoutError:
                    conn.close()
                    raise
                except (HttpError, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
                    conn.close()
                    # A kept-alive connection the server closed meanwhile: try a fresh one.
                    if reused and attempt < 2:
                        self.reconnects += 1
                        continue
                    raise HttpError(str(exc) or type(exc).__name__) from exc
                conn.used += 1
                if keep:
                    self._idle.append(conn)
                else:
                    conn.close()
                return resp
            raise HttpError("could not send the request")

    async def _roundtrip(self, conn: _Conn, method, path, headers, body) -> tuple[Response, bool]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        payload = body or b""
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(payload)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        conn.writer.write(head + payload)
        await conn.writer.drain()

        status_line = await conn.reader.readline()
        if not status_line:
            raise HttpError("connection closed before the response")
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HttpError(f"bad status line {status_line[:60]!r}")
        status = int(parts[1])
        resp_headers: dict[str, str] = {}
        while True:
            line = await conn.reader.readline()
            if not line:
                raise HttpError("connection closed in the headers")
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode("latin-1").partition(":")
            resp_headers[k.strip().lower()] = v.strip()
        if "content-length" in resp_headers:
            data = await conn.reader.readexactly(int(resp_headers["content-length"]))
            keep = resp_headers.get("connection", "").lower() != "close"
        elif resp_headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = await conn.reader.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await conn.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await conn.reader.readexactly(size))
                await conn.reader.readexactly(2)
            data = b"".join(chunks)
            keep = resp_headers.get("connection", "").lower() != "close"
        elif status in (204, 304) or method == "HEAD":
            data, keep = b"", True
        else:
            data, keep = await conn.reader.read(), False
        return Response(status, resp_headers, data), keep

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
