"""``lsb site serve``: the built site over HTTP on localhost."""

from __future__ import annotations

import functools
import http.server
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Where ``lsb site build`` writes and ``lsb site serve`` reads by default.
DEFAULT_OUT = Path("site/build")



def make_server(out_dir: str | Path = DEFAULT_OUT, port: int = 8000
                ) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``out_dir`` on 127.0.0.1 (``port`` 0 picks a free port)."""
    handler = functools.partial(QuietHandler, directory=str(out_dir))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files; requests go to the log instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def serve(out_dir: str | Path = DEFAULT_OUT, port: int = 8000) -> None:
    """Serve ``out_dir`` on http://127.0.0.1:``port`` until interrupted."""
    with make_server(out_dir, port) as server:
        log.info("serving %s on http://127.0.0.1:%d", out_dir, server.server_address[1])
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
