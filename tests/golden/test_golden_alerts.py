"""Every stored storm raises the alerts recorded in ``tests/golden/<storm>.json``.

The fixtures are the alert chains (areas, levels, times, sequences and
references) that the fusion job gave when they were recorded with
``tests/golden/record.py``. A change to the pipeline must keep them, or
re-record them and say in bench/ or docs/ what changed and why.

The short storms run in every test run; the long reconstructions (a 48-hour
typhoon takes minutes to replay) run with ``SUIBOU_GOLDEN_FULL=1``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from suibou import infra
from suibou.contracts import RiskScore
from suibou.drill import alert_chain, drill_alert_messages, drill_messages, run_drill
from suibou.settings import Settings
from tests.conftest import delete_topics

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
SHORT = ("suginami-2005-mini", "quiet-day-mini")
LONG = ("suginami-2005", "quiet-day", "oshima-2013", "hagibis-2019")


@pytest.fixture(scope="module")
def settings():
    settings = Settings(topic_prefix=f"test-golden-{uuid.uuid4().hex[:8]}")
    infra.up(settings)
    yield settings
    delete_topics(settings)


def _storms() -> list:
    full = os.environ.get("SUIBOU_GOLDEN_FULL") == "1"
    reason = "a long reconstruction: set SUIBOU_GOLDEN_FULL=1"
    return [*SHORT, *(pytest.param(s, marks=pytest.mark.skipif(not full, reason=reason)) for s in LONG)]


@pytest.mark.parametrize("storm", _storms())
def test_a_stored_storm_raises_its_recorded_alerts(settings, storm):
    recorded = json.loads((HERE / f"{storm}.json").read_text())["alerts"]
    result = run_drill(storm, settings, progress=False)
    chain = alert_chain(drill_alert_messages(settings, result.drill_id, result.alert_offsets), result.drill_id)
    missing = [a for a in recorded if a not in chain]
    unexpected = [a for a in chain if a not in recorded]
    assert chain == recorded, (f"{storm}: {len(missing)} recorded alert messages missing (e.g. {missing[:2]}), "
                               f"{len(unexpected)} new (e.g. {unexpected[:2]})")


def test_the_mini_storm_on_grib2_grids_raises_the_alerts_recorded_on_netcdf(settings):
    """The grid stage reads GRIB2 as it reads netCDF: the storm's grids written as GRIB2 (run-length
    packing, docs/grids.md) give the same alert chain."""
    storm = "suginami-2005-mini"
    recorded = json.loads((HERE / f"{storm}.json").read_text())["alerts"]
    result = run_drill(storm, settings, progress=False, grid_format="grib2")
    assert result.sent.get("grid", 0) > 0
    chain = alert_chain(drill_alert_messages(settings, result.drill_id, result.alert_offsets), result.drill_id)
    assert chain == recorded
    # The GRIB2 files were read, not refused: scores carry their rain rate and nowcast.
    gridded = [s for s in drill_messages(settings, result.drill_id, settings.topics.risk_scores)
               if isinstance(s, RiskScore) and "grid_rain_rate_mm_h" in s.features]
    assert gridded, "no score used a GRIB2 rain grid"
    assert any(s.features.get("nowcast_rain_60min_mm") != s.features.get("rain_60min_mm") for s in gridded)
