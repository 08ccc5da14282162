"""Progress bars for long work, silenced when asked or when stderr is not a terminal."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm


def progress_enabled(requested: bool | None = None) -> bool:
    """Whether to draw bars: an explicit choice wins, then $LAYERGUARD_PROGRESS, then isatty."""
    if requested is not None:
        return requested
    env = os.environ.get("LAYERGUARD_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def progress_bar(*, enabled: bool | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar writing to stderr; disabled bars cost nothing."""
    return tqdm(disable=not progress_enabled(enabled), file=sys.stderr, dynamic_ncols=True, **kwargs)
