"""Catching SIGINT and SIGTERM for a while, instead of stopping the process:
the one catcher of ``fit`` (stop after the step) and of the launcher (tell the
workers)."""
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what stops a tool


class CatchSignals:
    """Inside ``with``: SIGINT and SIGTERM are appended to ``received`` (as
    ``signal.Signals``, whose ``.name`` is ``'SIGINT'``) and passed to
    ``on_signal(signum)`` instead of acting.  ``once``: the first one restores
    the handlers from before the ``with``, so a second signal acts as usual.
    Only the main thread may set handlers: elsewhere nothing is caught."""

    def __init__(self, once=False):
        self.once = once

    def __enter__(self):
        self.received, self._previous = [], {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.received.append(signal.Signals(signum))
        self.on_signal(self.received[-1])
        if self.once:
            self._restore()

    def on_signal(self, signum):
        """Called at every signal caught; nothing here."""

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def __exit__(self, *exc_info):
        self._restore()
