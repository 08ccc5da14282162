"""StageTimes: a stage is the sum of its parts, listed in tree order; PartClock times steps by log message."""

from __future__ import annotations

import time

from layerguard.progress import StageTimes, stage_table


def test_parts_add_to_their_parents_and_list_under_them():
    t = StageTimes()
    t.add("generation/direct", 2.0, 8)
    t.add("guard/direct", 1.0, 8)
    t.add("generation/dan", 3.0, 8)
    t.add("report", 0.5)
    with t.stage("judges/refusal"):
        time.sleep(0.01)
    d = t.as_dict()
    names = [s["stage"] for s in d["stages"]]
    assert names == [
        "generation",
        "generation/direct",
        "generation/dan",
        "guard",
        "guard/direct",
        "report",
        "judges",
        "judges/refusal",
    ]
    by = {s["stage"]: s for s in d["stages"]}
    assert by["generation"]["seconds"] == 5.0 and by["generation"]["count"] == 16
    assert by["judges/refusal"]["seconds"] >= 0.01
    assert abs(d["accounted_s"] - (5.0 + 1.0 + 0.5 + by["judges"]["seconds"])) < 0.01
    table = stage_table(d)
    assert "  direct" in table and table.splitlines()[1].startswith("generation")


def test_a_stage_is_recorded_when_its_block_raises():
    t = StageTimes()
    try:
        with t.stage("model load"):
            raise ValueError
    except ValueError:
        pass
    assert [s["stage"] for s in t.as_dict()["stages"]] == ["model load"]


def test_part_clock_times_the_stretch_after_each_message():
    t = StageTimes()
    seen: list[str] = []
    clock = t.parts("guard build", seen.append)
    clock("capturing t_inst at every layer for 8 harmful + 8 benign prompts")
    time.sleep(0.02)
    clock("centroid at layer 3: inner-holdout AUROC 0.9")
    clock("training the output monitor on answers to 4 harmful prompts")
    time.sleep(0.01)
    clock.close()
    by = {s["stage"]: s["seconds"] for s in t.as_dict()["stages"]}
    assert seen[1] == "centroid at layer 3: inner-holdout AUROC 0.9"  # the messages still reach the log
    capture = [v for k, v in by.items() if k.startswith("guard build/capturing t_inst at every layer")]
    assert len(capture) == 1 and capture[0] >= 0.02
    assert all(len(k) <= len("guard build/") + 60 for k in by)  # long messages are cut
    assert "guard build/centroid at layer 3" in by and "guard build/setup" in by
    parts = sum(v for k, v in by.items() if k.startswith("guard build/"))
    assert abs(parts - by["guard build"]) < 1e-6
