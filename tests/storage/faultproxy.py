"""A loopback TCP proxy in front of an HTTP server (moto_server) that can break uploads: after
`after` bytes of a PUT's body it cuts the connection (`mode = "cut"`) or answers 500 (`mode =
"500"`). Every other request, and every request while `mode = "pass"`, goes through untouched.

One request per connection (the proxy asks the server to close after answering), so the fault
is decided per request: a multipart upload's parts are PUTs and fail, its abort (DELETE) and
the lookups (HEAD, GET) pass.
"""

from __future__ import annotations

import contextlib
import socket
import threading

INTERNAL_ERROR = (
    b"<?xml version='1.0' encoding='UTF-8'?>"
    b"<Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>"
)


class FaultyProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.after = 0
        self.only = b""  # break only PUTs whose request line holds this (a key), if set
        self.faults = 0  # PUTs broken so far
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stopped = True
        self._server.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = [
                line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")
            ]
            lines.append(b"Connection: close")
            broken = self.mode != "pass" and lines[0].startswith(b"PUT ") and self.only in lines[0]
            up = socket.create_connection(self.upstream, timeout=30)
            up.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            threading.Thread(target=_pump, args=(up, conn), daemon=True).start()
            sent = 0
            while True:
                if broken and sent + len(body) >= self.after:
                    up.sendall(body[: max(0, self.after - sent)])
                    self._break(conn, up)
                    return
                if body:
                    up.sendall(body)
                    sent += len(body)
                body = conn.recv(65536)
                if not body:
                    up.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            return

    def _break(self, conn: socket.socket, up: socket.socket) -> None:
        self.faults += 1
        up.close()
        if self.mode == "500":
            reply = (
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(INTERNAL_ERROR)
            ) + INTERNAL_ERROR
            try:
                conn.sendall(reply)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        conn.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (dst, src):
            with contextlib.suppress(OSError):
                sock.close()
