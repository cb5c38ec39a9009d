"""SIGTERM / SIGINT as a flag a training loop checks between steps."""
from __future__ import annotations

import signal
import threading
from typing import Optional


class StopSignal:
    """Turns SIGTERM / SIGINT into a flag the loop checks between steps."""

    def __init__(self):
        self.received: Optional[str] = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
