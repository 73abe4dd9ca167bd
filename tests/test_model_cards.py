"""The model cards page is generated from the registry and the training metrics, and current."""
from __future__ import annotations

import sys

from course_lib import list_models
from scripts.model_cards import CARDS, PAGE, render



def test_every_registered_model_has_a_card():
    missing = {m["name"] for m in list_models()} - set(CARDS)
    assert not missing, f"add a card to scripts/model_cards.py for: {sorted(missing)}"


def test_models_page_is_up_to_date():
    assert PAGE.read_text() == render(), "book/models.md is stale: run python scripts/model_cards.py"


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch):
    import scripts.model_cards as cards

    stale = tmp_path / "models.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(cards, "PAGE", stale)
    monkeypatch.setattr(sys, "argv", ["model_cards.py", "--check"])
    assert cards.main() == 1
