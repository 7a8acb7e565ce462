"""``suibou skill`` end to end on the short storms: real broker, Prism, drills and reports.

The command drills each storm and prints its skill; the figures must be those
of the storm's recorded alert chain (``tests/golden``) judged against the
storm's truth, and judging the reports it wrote again (``--from-reports``)
must give them too.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from replay_data import load_storm
from replay_data.report import drill_skill
from replay_data.skill import skill_dict
from suibou.cli import main
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).resolve().parent / "golden"
STORMS = ("suginami-2005-mini", "quiet-day-mini")


def _without_drill_id(figures: dict) -> dict:
    return {key: value for key, value in figures.items() if key != "drill_id"}


@pytest.fixture
def topic_prefix(monkeypatch):
    prefix = f"test-skill-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SUIBOU_TOPIC_PREFIX", prefix)
    yield prefix
    delete_topics(Settings())


def test_an_unknown_storm_is_refused_plainly(capsys):
    assert main(["skill", "suginami-2005-mini", "no-such-storm"]) == 2
    err = capsys.readouterr().err
    assert "unknown storm 'no-such-storm'" in err and "suginami-2005-mini" in err and "Traceback" not in err


def test_the_skill_command_on_the_short_storms_gives_the_recorded_chains_figures(topic_prefix, tmp_path, capsys):
    assert main(["skill", *STORMS, "--json", str(tmp_path / "skill.json")]) == 0
    printed = capsys.readouterr().out
    figures = {s["storm"]: s for s in json.loads((tmp_path / "skill.json").read_text())["storms"]}
    assert list(figures) == list(STORMS)
    for storm in STORMS:
        recorded = json.loads((GOLDEN / f"{storm}.json").read_text())["alerts"]
        expected = skill_dict(drill_skill(load_storm(storm), recorded))
        assert _without_drill_id(figures[storm]) == _without_drill_id(expected), storm
        report = Settings().home / "reports" / figures[storm]["drill_id"]
        assert "## Skill" in (report / "report.md").read_text(encoding="utf-8")
        assert json.loads((report / "report.json").read_text())["skill"]["storm"] == storm
    assert "## Summary against the targets" in printed and "Quiet day: 0 alerts" in printed

    # Hand-checked against the golden chain (docs/skill.md): Myoshoji level 3 raised at 20:51, its gauge at
    # evacuation judgement at 21:40 JST; Zenpukuji level 4 raised at 21:14, its gauge at flood danger at 21:43.
    suginami = {(e["area_id"], e["level"]): e["lead_min"] for e in figures["suginami-2005-mini"]["events"]}
    assert suginami[("R-MYOSHOJI-UPPER", 3)] == 49.0 and suginami[("R-ZENPUKUJI-UPPER", 4)] == 29.0
    assert figures["quiet-day-mini"]["alerts_raised"] == 0

    assert main(["skill", *STORMS, "--from-reports", "--json", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())["storms"]
    assert [_without_drill_id(s) for s in again] == [_without_drill_id(figures[s]) for s in STORMS]
