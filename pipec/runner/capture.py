"""Per-step capture of `print` output and logging.

While a run lasts, `sys.stdout` and `sys.stderr` are replaced by proxies
and a handler is added to the root logger.  Which step a write belongs to
is read from a context variable that the runner sets around each step
(and that foreach worker threads and timeout threads inherit, since they
run in a copy of the caller's context): each write goes to the step's log
file `<run>/logs/<step>.log` and, line by line, to `echo` (the runner
turns it into a `step_output` event).  A write outside any step (or from a
thread the step started itself, which does not inherit the context) goes
to the real stream, unchanged.

A context variable rather than a lock-and-swap of `sys.stdout` per step is
what keeps foreach elements (run in a thread pool) apart.  Capture never
breaks a step: a log file that cannot be written is given up and the
output is still echoed.

Logging: for the run, the root logger's level is lowered to INFO when it
is higher (the default is WARNING), so that a step's `logging.info` is
captured (a step's own `logger.setLevel` still wins).  When the root logger
has no handler of its own (logging not configured), records outside steps
at WARNING or above still reach the real stderr, as Python's last-resort
handler would print them.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from pathlib import Path
from typing import Callable, Optional, TextIO

Echo = Callable[[str, Optional[int], str, str], None]  # step, element, stream name, line


class StepSink:
    """The capture of one step: its log file (opened on the first write)
    and the echo of each complete line."""

    def __init__(self, step: str, folder: Path, echo: Echo | None):
        self.step = step
        self.folder = folder
        self.echo = echo
        self._file: TextIO | None = None
        self._broken = False
        self._opened = False
        self._lock = threading.Lock()
        self._partial: dict[tuple[Optional[int], str], str] = {}

    def write(self, text: str, element: int | None, stream: str) -> None:
        with self._lock:
            key = (element, stream)
            lines = (self._partial.pop(key, "") + text).split("\n")
            if lines[-1]:
                self._partial[key] = lines[-1]
            complete = lines[:-1]
            # Whole lines only: foreach elements print from several threads,
            # and a line must not be cut by another element's text.
            if complete:
                self._to_file("".join(line + "\n" for line in complete))
        for line in complete:
            self._echo(element, stream, line)

    @property
    def path(self) -> Path:
        """`<folder>/<step>.log` (built when needed: most steps print nothing)."""
        return self.folder / f"{self.step}.log"

    @property
    def written(self) -> bool:
        """Whether the log file was created."""
        return self._file is not None or self._opened

    def _to_file(self, text: str) -> None:
        if self._broken:
            return
        try:
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8", errors="replace")
                self._opened = True
            self._file.write(text)
            self._file.flush()
        except Exception:  # a full disk or an unwritable folder must not fail the step
            self._broken = True

    def _echo(self, element: int | None, stream: str, line: str) -> None:
        if self.echo is None:
            return
        try:
            self.echo(self.step, element, stream, line)
        except Exception:
            pass

    def close(self) -> None:
        with self._lock:
            partial, self._partial = self._partial, {}
            for (element, stream), line in partial.items():
                self._to_file(line + "\n")
                self._echo(element, stream, line)
            if self._file is not None:
                try:
                    self._file.close()
                except Exception:
                    pass
                self._file = None


_current: contextvars.ContextVar[tuple[StepSink, Optional[int]] | None] = contextvars.ContextVar(
    "pipec_capture", default=None)


class step_capture:
    """`with step_capture(sink):` — writes in this context belong to `sink`."""

    def __init__(self, sink: StepSink | None, element: int | None = None):
        self.sink = sink
        self.element = element

    def __enter__(self) -> None:
        self.token = _current.set((self.sink, self.element) if self.sink is not None else None)

    def __exit__(self, *exc) -> None:
        _current.reset(self.token)


def element_capture(element: int) -> step_capture:
    """Writes in this context belong to element `element` of the current step."""
    current = _current.get()
    return step_capture(current[0] if current else None, element)


class _Proxy:
    """Stands for sys.stdout / sys.stderr while a run lasts."""

    def __init__(self, real: TextIO, name: str):
        self._real = real
        self._name = name

    def write(self, text: str) -> int:
        current = _current.get()
        if current is None:
            return self._real.write(text)
        try:
            current[0].write(str(text), current[1], self._name)
        except Exception:
            pass
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._real.flush()

    def __getattr__(self, name: str):  # encoding, isatty, fileno, ...: the real stream's
        return getattr(self._real, name)


class _Handler(logging.Handler):
    def __init__(self, passthrough: bool):
        super().__init__(logging.NOTSET)
        self.passthrough = passthrough
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        current = _current.get()
        try:
            if current is not None:
                current[0].write(self.format(record) + "\n", current[1], "log")
            elif self.passthrough and record.levelno >= logging.WARNING:
                sys.stderr.write(self.format(record) + "\n")
        except Exception:
            pass


class installed:
    """`with installed():` — the proxies and the logging handler, for a run."""

    def __enter__(self) -> None:
        self.stdout, self.stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Proxy(self.stdout, "stdout"), _Proxy(self.stderr, "stderr")
        root = logging.getLogger()
        self.level = root.level
        unconfigured = not root.handlers
        self.handler = _Handler(passthrough=unconfigured)
        root.addHandler(self.handler)
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)

    def __exit__(self, *exc) -> None:
        sys.stdout, sys.stderr = self.stdout, self.stderr
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)
