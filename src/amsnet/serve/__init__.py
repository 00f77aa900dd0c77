"""``amsnet serve``: a local web page for people who would rather not use a terminal.

* :mod:`amsnet.serve.jobs`: the upload limits and the one-at-a-time work queue.
* :mod:`amsnet.serve.app`: the Starlette application (page and JSON API).
* :class:`LocalServer`: runs it with uvicorn on a thread, so that the caller learns the
  address (``port=0`` picks a free one) and can stop it.

Starlette and uvicorn are the optional extra ``amsnet[serve]``.
"""

from __future__ import annotations

import threading
import time

from amsnet.errors import ConfigError
from amsnet.serve.jobs import JobQueue, ModelChoice, offered_models, ServeLimits

__all__ = ["JobQueue", "LocalServer", "ModelChoice", "ServeLimits", "offered_models"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def require_serve_extra() -> None:
    """Raise a clear error when Starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise ConfigError(
            f"amsnet serve needs Starlette and uvicorn ({error.name} is missing): "
            "pip install 'amsnet[serve]'"
        ) from None


class LocalServer:
    """The page served by uvicorn on a background thread.

    Args:
        jobs: the queue the page feeds (closed when the server stops).
        host: ``127.0.0.1`` unless the user asks otherwise.
        port: ``0`` picks a free port.
    """

    def __init__(self, jobs: JobQueue, host: str = "127.0.0.1", port: int = 8765) -> None:
        require_serve_extra()
        import uvicorn

        from amsnet.serve.app import create_app

        if not 0 <= port <= 65535:
            raise ConfigError(f"--port must be 0-65535, got {port}")
        config = uvicorn.Config(
            create_app(jobs), host=host, port=port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self.host = host

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; returns the page's address.

        Raises:
            ConfigError: the port is taken or the address cannot be bound.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(
                    f"could not listen on {self.host}:{self._server.config.port} (in use? "
                    "choose another --port, or 0 for any free one)"
                )
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop()
