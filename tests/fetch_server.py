"""A local HTTP server on 127.0.0.1 for the fetch tests: serves one folder, honours ``Range``, can cut a file short.

Nothing here reaches the internet: every URL is ``http://127.0.0.1:<free port>/<file name>``.
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

_RANGE = re.compile(r"^bytes=(\d+)-$")


class FileServer:
    """Serves the files of ``root`` by name.

    Attributes:
        requests: the path of every GET, in order.
        ranges: the ``Range`` header of every GET (``None`` when absent).
        cut: ``{file name: bytes}``: the next GET of that file sends only that many bytes of its body (announcing the
            full length) and closes the connection, as a dropped download does; used once.
        ranges_supported: when False, ``Range`` is ignored and every answer is the whole file (200).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.ranges: list[str | None] = []
        self.cut: dict[str, int] = {}
        self.ranges_supported = True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                name = unquote(urlparse(self.path).path.lstrip("/"))
                server.requests.append(self.path)
                server.ranges.append(self.headers.get("Range"))
                path = server.root / name
                if not name or "/" in name or not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                match = _RANGE.match(self.headers.get("Range") or "")
                start = int(match[1]) if match and server.ranges_supported else 0
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut:
                    body = body[: server.cut.pop(name)]
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def dead_url(name: str) -> str:
    """A URL on a local port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"
