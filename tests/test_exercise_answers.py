"""Answer keys that are numbers computed from the course's data are recomputed here, so a
change of the data (or of a model) cannot leave a stale key behind."""
from __future__ import annotations

import pytest

from course_lib.grading import ch01
from course_lib.zoo.shapes import make_shapes


def test_ch01_mean_mask_area_key_matches_the_dataset():
    area = float(make_shapes(500, seed=0).masks.double().mean())
    assert ch01.MEAN_MASK_AREA == pytest.approx(area, abs=1e-4)


def test_ch01_reference_mass_on_mask_is_a_share_of_absolute_mass():
    import torch

    maps = torch.tensor([[[1.0, -3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = torch.tensor([[[True, False], [False, False]], [[True, True], [True, True]]])
    got = ch01.reference_mass_on_mask(maps, masks)
    assert got.tolist() == [0.25, 0.0]


def test_ch01_random_maps_score_the_mask_area_within_the_answer_tolerance():
    import torch

    batch = make_shapes(500, seed=0)
    for seed in (0, 1):
        noise = torch.rand(batch.masks.shape, generator=torch.Generator().manual_seed(seed))
        score = float(ch01.reference_mass_on_mask(noise, batch.masks).mean())
        assert abs(score - ch01.MEAN_MASK_AREA) < 0.005 / 2


# --- chapter 05 ----------------------------------------------------------------------------------


def _ch05_solution_text() -> str:
    from pathlib import Path

    from course_lib.grading import ch05

    return (Path(__file__).resolve().parents[1] / "solutions" / f"{ch05.EXERCISE}.py").read_text()


def _ch05_row_outputs() -> dict:
    """The five maps of the find-the-bug item, computed from their definitions."""
    import math

    import torch

    import course_lib as cl
    from course_lib.grading import ch05

    w = torch.tensor(ch05.ROW_WEIGHTS, dtype=torch.float64)

    class Row(torch.nn.Module):
        def forward(self, x):
            logit = ch05.ROW_BIAS + (x.flatten(1) * w).sum(dim=1)
            return torch.stack([logit, torch.zeros_like(logit)], dim=1)

    class Probability(torch.nn.Module):
        def forward(self, x):
            return Row()(x).softmax(dim=1)

    row = torch.ones(1, 1, 1, 8, dtype=torch.float64)
    occlusion = lambda model: cl.occlusion(model.eval(), row, 0, window=(1, 3), stride=(1, 2))[0, 0, 0]  # noqa: E731

    def by_hand(starts, combine):
        drops = [float(w[s : s + 3].sum()) for s in starts]  # fill 0 on a row of ones: the weights hidden
        out = []
        for p in range(8):
            covering = [d for s, d in zip(starts, drops) if s <= p < s + 3]
            out.append(0.0 if not covering else (max(covering) if combine == "max" else sum(covering) / len(covering)))
        return torch.tensor(out, dtype=torch.float64)

    ceil_starts = [2 * i for i in range(math.ceil((8 - 3) / 2) + 1)]
    return {
        "correct": occlusion(Row()),
        "probability": occlusion(Probability()),
        "max": by_hand(ceil_starts, "max"),
        "floor": by_hand([2 * i for i in range((8 - 3) // 2 + 1)], "mean"),
        "shifted": by_hand(ceil_starts[:-1] + [8 - 3], "mean"),
    }


def test_ch05_find_the_bug_table_shows_what_each_bug_computes():
    import re

    from course_lib.grading import ch05

    outputs = _ch05_row_outputs()
    # Windows at 0, 2, 4 and 6 (the last one cut) drop the logit by 1, 7, 4 and 2.
    assert outputs["correct"].tolist() == [1, 1, 4, 7, 5.5, 4, 3, 2]
    text = _ch05_solution_text()
    for letter, kind in ch05.ROW_OUTPUTS.items():
        line = re.search(rf"^# \| {letter} \|(.*)\|$", text, flags=re.M)
        assert line, letter
        shown = [float(v) for v in line.group(1).split("|")]
        assert shown == [round(float(v), 2) for v in outputs[kind]], (letter, kind, shown)
    # The five outputs differ, so each question has one answer.
    rows = [tuple(round(float(v), 2) for v in m) for m in outputs.values()]
    assert len(set(rows)) == len(rows)


def test_ch05_find_the_bug_keys_name_the_right_outputs():
    from course_lib.grading import ch05
    from course_lib.grading.checks import Got

    keys = {"answer_bug_max": "max", "answer_bug_floor": "floor", "answer_bug_probability": "probability",
            "answer_correct_output": "correct"}
    for check in ch05.FIND_THE_BUG.checks:
        (name,) = check.answers
        for letter, kind in ch05.ROW_OUTPUTS.items():
            try:
                check.run(Got({name: letter}))
                passed = True
            except Exception:
                passed = False
            assert passed == (kind == keys[name]), (name, letter)


def test_ch05_error_table_in_the_exercise_is_the_chapters_output():
    import re
    from pathlib import Path

    import nbformat

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "05_occlusion_and_shapley.ipynb", 4)
    printed = next(o["text"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("name") == "stdout" and o["text"].startswith("relative error over"))
    chapter = {int(m.group(1)): m.group(2).split() for m in re.finditer(r"^\s*(\d+)\s+(.*)$", printed, flags=re.M)}
    rows = list(re.finditer(r"^# \| (\d+) \| (.*) \|$", _ch05_solution_text(), flags=re.M))
    assert len(rows) == 5
    for m in rows:
        shown = " ".join(c.strip() for c in m.group(2).split("|")).split()
        assert shown == chapter[int(m.group(1))], (m.group(1), shown, chapter[int(m.group(1))])


def _ch05_got(**maps):
    """Collected values of the occlusion_map item: the reference everywhere unless overridden."""
    import numpy as np

    from course_lib.grading import ch05
    from course_lib.grading.checks import Array, Got

    values = {key: Array("tensor", np.asarray(maps.get(key, ch05.reference(key)).numpy()))
              for key in ch05.PROBES}
    values.update({"clean": Array("tensor", np.zeros((8, 8))), "clean:param_grads": False,
                   "clean:training": False, "clean:input_unchanged": True})
    return Got(values)


def _ch05_reasons(got) -> dict:
    from course_lib.grading import ch05
    from course_lib.grading.checks import run_checks

    return {name: reason for name, _, _, reason in run_checks(ch05.OCCLUSION_MAP, got)}


def test_ch05_occlusion_checks_wait_for_the_single_window_drop_and_name_recognised_mistakes():
    from course_lib.grading import ch05

    reasons = _ch05_reasons(_ch05_got())
    assert all(r == "" for r in reasons.values()), reasons
    # A reversed sign: the tiles check says so, the checks built on it defer instead of diagnosing.
    flipped = {key: -ch05.reference(key) for key in ch05.PROBES}
    reasons = _ch05_reasons(_ch05_got(**flipped))
    assert "sign is reversed" in reasons[ch05.TILES]
    for name, reason in reasons.items():
        if name not in (ch05.TILES, "returns an H x W map", "leaves the image and the model as they were"):
            assert reason.startswith("fix the check"), (name, reason)
    # One mistake, one lost check, its own reason.
    for combine, words in (("sum", "add up"), ("max", "largest drop"), ("last", "last window")):
        reasons = _ch05_reasons(_ch05_got(overlap=ch05.variant("overlap", combine)))
        failed = {n: r for n, r in reasons.items() if r}
        assert list(failed) == ["overlapping windows: a pixel's value combines its windows as the chapter's does"], failed
        assert words in next(iter(failed.values()))
    border_check = "the border: windows placed as the chapter's (and Captum's) are"
    reasons = _ch05_reasons(_ch05_got(border=ch05.variant("border", count="floor")))
    assert [n for n, r in reasons.items() if r] == [border_check]
    assert "uncovered" in reasons[border_check]
    assert "moved inside" in _ch05_reasons(_ch05_got(border=ch05.variant("border", count="shifted")))[border_check]
    nan_border = ch05.reference("border").clone()
    nan_border[:, 6:] = float("nan")
    assert "covered by no window" in _ch05_reasons(_ch05_got(border=nan_border))[border_check]
    reasons = _ch05_reasons(_ch05_got(fill=ch05.variant("fill", fill=0.0)))
    assert "not to `fill`" in reasons["the fill value replaces the window"]
