"""moto's server on 127.0.0.1 with the Lambda policy extension, for `make demo` and e2e tests.

The server runs in a thread of the calling process, so it shares moto's in-memory backends
and configuration with that process. While a server started here runs, moto's Lambda
``invoke`` uses the Docker-free backend (``{"lambda": {"use_docker": False}}``): the
previous setting comes back when the last such server stops.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from moto.core.config import DefaultConfig, default_user_config
from moto.server import ThreadedMotoServer

from emulator import access_analyzer, lambda_policies

__all__ = ["MOTO_CONFIG", "reset_server", "running_server", "start_server", "stop_server"]

# moto's configuration for everything that uses the emulator: Lambda invoke without Docker.
MOTO_CONFIG: Final[DefaultConfig] = {"lambda": {"use_docker": False}}

_LOCK = threading.Lock()
_active_servers: list[ThreadedMotoServer] = []
_saved_lambda_config: list[Any] = []


def start_server(host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadedMotoServer, str]:
    """Install the extension, start moto's server (port 0: a free port), return it and its URL."""
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"the emulator only listens on the loopback interface, not {host}")
    lambda_policies.install()
    access_analyzer.install()
    # One line per request on stderr drowns the demo's output; errors still show.
    werkzeug_log = logging.getLogger("werkzeug")
    if werkzeug_log.level == logging.NOTSET:
        werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    with _LOCK:
        if not _active_servers:
            _saved_lambda_config.append(default_user_config.get("lambda"))
            default_user_config["lambda"] = {"use_docker": False}
        _active_servers.append(server)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def stop_server(server: ThreadedMotoServer) -> None:
    """Stop a server started by start_server; the last one restores moto's Lambda setting."""
    server.stop()
    with _LOCK:
        if server in _active_servers:
            _active_servers.remove(server)
            if not _active_servers and _saved_lambda_config:
                previous = _saved_lambda_config.pop()
                if previous is None:
                    default_user_config.pop("lambda", None)
                else:
                    default_user_config["lambda"] = previous


@contextmanager
def running_server() -> Iterator[str]:
    """``with running_server() as endpoint_url:`` a server for the duration of the block."""
    server, endpoint_url = start_server()
    try:
        yield endpoint_url
    finally:
        stop_server(server)


def reset_server(endpoint_url: str) -> None:
    """Forget every resource the server holds (moto's ``POST /moto-api/reset``)."""
    if not endpoint_url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"not a local emulator endpoint: {endpoint_url}")
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        reply.read()
