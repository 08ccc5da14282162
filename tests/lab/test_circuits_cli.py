"""``layerguard lab patch|heads|interchange|cipher``: user mistakes are clear errors before any model loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "layerguard.cli", "lab"]


@pytest.mark.parametrize(
    ("args", "needle", "hint"),
    [
        (["patch", "--kinds", "resid_pre,heads,neurons"], "unknown patch kind 'neurons'", "heads_by_pos"),
        (["interchange"], "give the candidate heads with --heads or --from", "--heads 12.3,14.0"),
        (["cipher", "--encodings", "rot13,roleplay"], "'roleplay' is not an encoding attack", "base64"),
        (["patch", "--positions", "t_inst,middle"], "unknown position 'middle'", "post_inst[k]"),
    ],
)
def test_bad_input_is_an_error_with_a_hint(tmp_path, args, needle, hint):
    proc = subprocess.run([*CLI, *args, "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert needle in proc.stderr and "hint:" in proc.stderr and hint in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
