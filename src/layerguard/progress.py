"""Progress of long work on stderr: a live bar on a terminal, periodic one-line reports elsewhere.

Piped output, ``make``, CI logs and ``nohup`` see a line such as
``red team: 40% 1152/2880 [05:01<07:32, 3.82cell/s]`` (done/total, elapsed<ETA, rate) at most
every ``$LAYERGUARD_PROGRESS_INTERVAL`` seconds (default 15), plus one when the work starts
and one when it ends. ``LAYERGUARD_PROGRESS=0`` silences both.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from tqdm.auto import tqdm as auto_tqdm
from tqdm.std import tqdm

__all__ = ["LINE_FORMAT", "OPEN_LINE_FORMAT", "progress_bar", "progress_enabled", "progress_interval"]

LINE_FORMAT = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
"""One report line off a terminal: share done, counts, elapsed<ETA, rate."""

OPEN_LINE_FORMAT = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"
"""The report line of work whose total is unknown."""

DEFAULT_INTERVAL_S = 15.0


def progress_enabled(requested: bool | None = None) -> bool:
    """Whether to report progress: an explicit choice wins, then ``$LAYERGUARD_PROGRESS``, else yes."""
    if requested is not None:
        return requested
    env = os.environ.get("LAYERGUARD_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return True


def progress_interval() -> float:
    """Seconds between report lines off a terminal (``$LAYERGUARD_PROGRESS_INTERVAL``, default 15)."""
    try:
        return max(0.0, float(os.environ.get("LAYERGUARD_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


class _Lines:
    """A stream that turns tqdm's in-place redraws (carriage return + text) into whole lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, s: str) -> int:
        text = s.replace("\r", "").rstrip()
        if text:  # tqdm also writes bare "\r", "\n" and blanking spaces: nothing to report
            self.stream.write(text + "\n")
        return len(s)

    def flush(self) -> None:
        self.stream.flush()


def _interactive(stream: IO[str]) -> bool:
    return stream.isatty() or "ipykernel" in sys.modules  # a notebook gets tqdm's widget


def progress_bar(*, enabled: bool | None = None, **kwargs: Any) -> tqdm:
    """A progress bar on stderr; disabled bars cost nothing.

    On a terminal (or in a notebook) a live bar; otherwise one line per report (see the
    module docstring). ``kwargs`` go to tqdm (``total``, ``desc``, ``unit`` ...).
    """
    stream = sys.stderr
    if not progress_enabled(enabled):
        return tqdm(disable=True, **kwargs)
    if _interactive(stream):
        bar: tqdm = auto_tqdm(file=stream, dynamic_ncols=True, **kwargs)
        return bar
    kwargs.setdefault("desc", "progress")
    kwargs.setdefault("bar_format", LINE_FORMAT if kwargs.get("total") else OPEN_LINE_FORMAT)
    kwargs.setdefault("mininterval", progress_interval())
    kwargs.setdefault("miniters", 1)  # report on the first update after each interval
    return tqdm(file=_Lines(stream), ascii=True, **kwargs)
