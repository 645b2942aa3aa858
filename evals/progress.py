"""Progress of a long evaluation on stderr: the stage, n/total and an estimate of the time left.

On a terminal one line is rewritten in place; otherwise (a pipe, a log file, CI) plain lines, at
most one every `PLAIN_EVERY_SECONDS` per stage plus its last, so a log stays readable.
`encoding_progress` wraps an encoder so that a long `encode` call reports as it goes (and an
identical repeated call, which tuning makes, is answered from memory).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import numpy as np

PLAIN_EVERY_SECONDS = 5.0
CHUNK = 256
"""Texts per encode call while reporting (a multiple of the encoders' batch sizes)."""


class ProgressLine:
    """A `Progress` callable (one message per call) that also counts: `count(stage, n, total)`."""

    def __init__(self, stream: IO[str] | None = None, *, tty: bool | None = None) -> None:
        self._stream = stream
        self._tty = tty
        self._stage: str | None = None
        self._started = 0.0
        self._last_plain = 0.0
        self._open = False

    @property
    def stream(self) -> IO[str]:
        """The given stream, or `sys.stderr` as it is now (tests and notebooks replace it)."""
        return self._stream if self._stream is not None else sys.stderr

    @property
    def tty(self) -> bool:
        if self._tty is not None:
            return self._tty
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, message: str) -> None:
        self._end_line()
        print(message, file=self.stream, flush=True)

    def count(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._started, self._last_plain = stage, now, 0.0
        elapsed = now - self._started
        eta = ""
        if 0 < done < total and elapsed > 0.5:
            eta = f", about {format_seconds(elapsed / done * (total - done))} left"
        elif done >= total:
            eta = f", {format_seconds(elapsed)}"
        text = f"{stage}: {done}/{total}{eta}"
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._open = True
            if done >= total:
                self._end_line()
            self.stream.flush()
        elif done >= total or now - self._last_plain >= PLAIN_EVERY_SECONDS:
            self._last_plain = now
            print(text, file=self.stream, flush=True)

    def _end_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


Counter = Callable[[int, int], None]


class _Reporting:
    """An encoder that reports `done/total` texts while it encodes; the rest is the wrapped one's."""

    def __init__(self, inner: Any, report: Counter) -> None:
        self._inner = inner
        self._report = report
        self._last: tuple[Any, np.ndarray] | None = None
        if hasattr(inner, "encode_spans"):
            self.encode_spans = self._encode_spans

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _remembered(self, key: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        value = make()
        self._last = (key, value)
        return value

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)

        def make() -> np.ndarray:
            if len(texts) <= CHUNK:
                return np.asarray(self._inner.encode(texts))
            parts = []
            for start in range(0, len(texts), CHUNK):
                parts.append(np.asarray(self._inner.encode(texts[start : start + CHUNK])))
                self._report(min(start + CHUNK, len(texts)), len(texts))
            return np.vstack(parts)

        return self._remembered(("encode", tuple(texts)), make)

    def _encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> np.ndarray:
        texts, spans = list(texts), [list(s) for s in spans]

        def make() -> np.ndarray:
            if len(texts) <= CHUNK:
                return np.asarray(self._inner.encode_spans(texts, spans))
            parts = []
            for start in range(0, len(texts), CHUNK):
                end = start + CHUNK
                parts.append(np.asarray(self._inner.encode_spans(texts[start:end], spans[start:end])))
                self._report(min(end, len(texts)), len(texts))
            return np.vstack(parts)

        key = ("spans", tuple(texts), tuple(tuple(s) for s in spans))
        return self._remembered(key, make)


def encoding_progress(encoder: Any, report: Counter) -> Any:
    """`encoder`, reporting as it encodes long lists (and remembering the last list it encoded)."""
    return _Reporting(encoder, report)
