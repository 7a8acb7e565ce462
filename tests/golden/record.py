"""Records the golden alert chains of stored storms: ``python tests/golden/record.py [STORM ...]``.

Each storm is replayed as a drill, as fast as possible, through Kafka and the
fusion job, and its alert messages are written to ``tests/golden/<storm>.json``
as :func:`suibou.drill.alert_chain` rows. ``test_golden_alerts.py`` replays the
storms and compares. Re-record only for a change that is meant to change the
alerts, and say in bench/ or docs/ what changed and why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def record(storms: list[str]) -> None:
    from replay_data import list_storms
    from suibou import infra
    from suibou.drill import alert_chain, drill_alert_messages, run_drill
    from suibou.settings import get_settings

    settings = get_settings()
    infra.up(settings)
    for storm in storms or [s for s in list_storms() if s in BUNDLED]:
        result = run_drill(storm, settings)
        alerts = drill_alert_messages(settings, result.drill_id, result.alert_offsets)
        chain = alert_chain(alerts, result.drill_id)
        target = HERE / f"{storm}.json"
        target.write_text(json.dumps({"storm": storm, "alerts": chain}, indent=1) + "\n")
        print(f"{storm}: {len(chain)} alert messages -> {target}", file=sys.stderr)


#: The stored storms that ship with suibou (imported storms are the user's own).
BUNDLED = ("suginami-2005-mini", "quiet-day-mini", "suginami-2005", "quiet-day", "oshima-2013", "hagibis-2019")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storms", nargs="*", help="default: every bundled storm")
    record(parser.parse_args().storms)
