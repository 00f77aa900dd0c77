"""Stopping a training run safely: the first SIGINT/SIGTERM asks it to stop after the current
step (the trainer then saves a checkpoint), a second one stops the process at once."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

log = logging.getLogger("amsnet.training")


class StopSignals:
    """SIGINT/SIGTERM set a flag (first signal) or stop at once (second signal)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is not None:
            # Second signal: the user wants out now.
            self.__exit__()
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return
        self.received = number
        log.warning(
            "%s received: stopping after this step and saving a checkpoint (send it again to "
            "stop at once without saving)",
            signal.Signals(number).name,
        )

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


def ignore_interrupts(worker_id: int) -> None:
    """DataLoader workers ignore Ctrl-C: the training process decides when to stop them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
