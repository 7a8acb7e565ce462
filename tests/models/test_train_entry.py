"""The training entry point that `python -m models.train` and `suibou models train` use."""

from __future__ import annotations

import json

import pytest

from models.train import main


def test_main_trains_the_chosen_model_into_a_folder(tmp_path, capsys):
    results = main(["flood", "--out-dir", str(tmp_path), "--no-progress"])
    assert set(results) == {"flood/4"}
    assert results["flood/4"]["danger_60min"] > 0.9
    meta = json.loads((tmp_path / "flood-4.json").read_text())
    assert meta["model_ref"] == "flood/4" and (tmp_path / "flood-4.md").is_file()
    assert "flood/4: wrote" in capsys.readouterr().out


def test_main_rejects_unknown_models():
    with pytest.raises(SystemExit):
        main(["rainbow"])
