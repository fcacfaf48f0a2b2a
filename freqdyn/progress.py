"""Progress for long work: the one switch, and one reporter for bars and plain lines.

* On a terminal: a tqdm bar on stderr.
* Elsewhere (logs, ``nohup``, CI): a plain line on stderr every :data:`LINE_SECONDS`
  seconds and at the end, e.g. ``train gaussian-1d: 1200/5000 steps (24 %), 14.2 s,
  about 45 s left, loss=3.1e-04``.
* Nowhere with ``FREQDYN_NO_PROGRESS=1``, or when the caller passes ``enabled=False``.

:func:`say` prints one status line (set-up stages, resume notices) under the same switch.
"""

from __future__ import annotations

import os
import sys
import time

#: Seconds between plain progress lines when stderr is not a terminal.
LINE_SECONDS = 30.0


def progress_enabled() -> bool:
    """False when FREQDYN_NO_PROGRESS=1; progress (bar or lines) otherwise."""
    return os.environ.get("FREQDYN_NO_PROGRESS", "") != "1"


def say(text: str, enabled: bool | None = None) -> None:
    """One status line on stderr (unless progress is switched off)."""
    if progress_enabled() if enabled is None else enabled:
        print(text, file=sys.stderr, flush=True)


class Progress:
    """Counts work units; draws a bar on a terminal and plain lines elsewhere."""

    def __init__(self, total: int, label: str, unit: str = "steps", initial: int = 0,
                 enabled: bool | None = None):
        self.total, self.label, self.unit = int(total), label, unit
        self.done = int(initial)
        self.enabled = progress_enabled() if enabled is None else bool(enabled)
        self.start = time.perf_counter()
        self.start_done = self.done
        self.last_line = self.start
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, desc=label, unit=unit.rstrip("s"),
                            leave=False, dynamic_ncols=True)

    def update(self, done: int, **postfix) -> None:
        """Set the count to ``done`` (absolute); ``postfix`` values are shown with it."""
        if not self.enabled:
            self.done = done
            return
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(done - self.done)
            self.done = done
            return
        self.done = done
        now = time.perf_counter()
        if now - self.last_line >= LINE_SECONDS:
            self.last_line = now
            self._line(now, postfix)

    def _line(self, now: float, postfix: dict) -> None:
        elapsed = now - self.start
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        extra = "".join(f", {k}={v}" for k, v in postfix.items())
        eta = f", about {left:.0f} s left" if left == left else ""
        print(f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f} %), "
              f"{elapsed:.1f} s{eta}{extra}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.done > self.start_done:
            self._line(time.perf_counter(), {})
