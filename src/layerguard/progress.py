"""Progress of long work on stderr: a live bar on a terminal, periodic one-line reports elsewhere.

Piped output, ``make``, CI logs and ``nohup`` see a line such as
``red team: 40% 1152/2880 [05:01<07:32, 3.82cell/s]`` (done/total, elapsed<ETA, rate) at most
every ``$LAYERGUARD_PROGRESS_INTERVAL`` seconds (default 15), plus one when the work starts
and one when it ends. ``LAYERGUARD_PROGRESS=0`` silences both.

:class:`StageTimes` accounts for the wall time of long work stage by stage (the audit
writes it into ``summary.json`` and its report).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from tqdm.auto import tqdm as auto_tqdm
from tqdm.std import tqdm

__all__ = [
    "LINE_FORMAT",
    "OPEN_LINE_FORMAT",
    "StageTimes",
    "progress_bar",
    "stage_table",
    "progress_enabled",
    "progress_interval",
]

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


class StageTimes:
    """Wall time per named stage, summed over repeats, in the order stages first ran.

    Names may nest with ``/`` (``generation/roleplay``, ``guard build/capture``): time added
    to a part is also added to its parents, so a stage is the sum of its parts and only the
    top-level stages add up to the total.
    """

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self.started = time.perf_counter()

    def add(self, name: str, seconds: float, count: int = 1) -> None:
        """Add ``seconds`` (and ``count`` items, e.g. answers) to stage ``name`` and to each parent of it."""
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            key = "/".join(parts[:i])
            self._seconds[key] = self._seconds.get(key, 0.0) + max(0.0, seconds)
            self._count[key] = self._count.get(key, 0) + count

    @contextmanager
    def stage(self, name: str, count: int = 1) -> Iterator[None]:
        """Time the block as stage ``name`` (recorded even when the block raises)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0, count)

    def parts(self, prefix: str, log: Callable[[str], None]) -> PartClock:
        """A log callback that also times ``prefix/<part>``: each message starts a new part."""
        return PartClock(self, prefix, log)

    def as_dict(self) -> dict[str, Any]:
        """``{"total_s", "accounted_s", "stages": [{"stage", "seconds", "count", "share"}, ...]}``.

        ``accounted_s`` sums the top-level stages (names without ``/``); ``share`` is of the total.
        """
        total = time.perf_counter() - self.started
        top = sum(s for n, s in self._seconds.items() if "/" not in n)
        first = {n: i for i, n in enumerate(self._seconds)}

        def tree_order(name: str) -> tuple[int, ...]:  # a stage, then its parts, in the order they first ran
            parts = name.split("/")
            return tuple(first["/".join(parts[: i + 1])] for i in range(len(parts)))

        return {
            "total_s": round(total, 2),
            "accounted_s": round(top, 2),
            "stages": [
                {
                    "stage": n,
                    "seconds": round(s, 2),
                    "count": self._count[n],
                    "share": round(s / total, 4) if total > 0 else None,
                }
                for n, s in sorted(self._seconds.items(), key=lambda kv: tree_order(kv[0]))
            ],
        }


class PartClock:
    """A ``log`` callback that times the stretch after each message as ``prefix/<message>``.

    Libraries report their steps by messages (``build_guard(log=...)``); the time from one
    message to the next is that step's. Call :meth:`close` when the work ends.
    """

    def __init__(self, times: StageTimes, prefix: str, log: Callable[[str], None]) -> None:
        self.times, self.prefix, self.log = times, prefix, log
        self.part = "setup"
        self.t0 = time.perf_counter()

    @staticmethod
    def _name(message: str) -> str:
        head = message.split(":", 1)[0].strip()
        return head if len(head) <= 60 else head[:57] + "..."

    def _lap(self) -> None:
        now = time.perf_counter()
        self.times.add(f"{self.prefix}/{self.part}", now - self.t0)
        self.t0 = now

    def __call__(self, message: str) -> None:
        self._lap()
        self.part = self._name(message)
        self.log(message)

    def close(self) -> None:
        """End the current part."""
        self._lap()


def stage_table(timing: dict[str, Any], width: int = 48) -> str:
    """:meth:`StageTimes.as_dict` as a plain-text table (stage, seconds, share, count)."""
    total = float(timing.get("total_s") or 0.0)
    lines = [f"{'stage':<{width}} {'seconds':>9} {'share':>6} {'count':>6}"]
    for st in timing.get("stages", []):
        depth = st["stage"].count("/")
        name = ("  " * depth + st["stage"].rsplit("/", 1)[-1])[:width]
        share = f"{100 * st['seconds'] / total:5.1f}%" if total > 0 else "     -"
        lines.append(f"{name:<{width}} {st['seconds']:>9.1f} {share:>6} {st['count']:>6}")
    acc = float(timing.get("accounted_s") or 0.0)
    lines.append(f"{'total (wall clock)':<{width}} {total:>9.1f}  100%")
    lines.append(f"{'not in any stage':<{width}} {total - acc:>9.1f}")
    return "\n".join(lines)
