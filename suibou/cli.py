"""The ``suibou`` command line.

    suibou demo                 set everything up, run a storm drill, serve the alerts
    suibou drill STORM          replay a stored storm through Kafka and the pipeline
    suibou storms               list the stored storms
    suibou infra up|down|status local Kafka broker, Prism runner, alert API
    suibou api                  serve the alert API in the foreground
    suibou pipeline [...]       run the fusion job on live topics
    suibou models train         train and export the ONNX models
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections.abc import Sequence

from suibou.settings import Settings, get_settings


def _say(message: str) -> None:
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="suibou", description="Real-time water-hazard alerting.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="set up everything, run a storm drill end to end, serve the alerts")
    drill = commands.add_parser("drill", help="replay a stored storm as an exercise")
    drill.add_argument("storm", help="storm name (see `suibou storms`)")
    for sub in (demo, drill):
        sub.add_argument("--speed", type=float, default=None,
                         help="storm seconds per wall second (60 = a storm hour per minute); default: as fast as possible")
        sub.add_argument("--hold-minutes", type=float, default=30.0, help="hysteresis before an alert level is lowered")
        sub.add_argument("--drill-id", default=None, help="id stamped on every message (default: from storm and time)")
    demo.add_argument("--storm", default="suginami-2005-mini")

    commands.add_parser("storms", help="list the stored storms")
    infra = commands.add_parser("infra", help="manage the local Kafka broker, Prism runner and alert API")
    infra.add_argument("action", choices=("up", "down", "status"))
    commands.add_parser("api", help="serve the alert API in the foreground")
    commands.add_parser("pipeline", help="run the fusion job on live topics (Beam options may follow)",
                        add_help=False)
    models = commands.add_parser("models", help="model training")
    models.add_argument("action", choices=("train",))
    return parser


def _wait_for_api(settings: Settings, drill_id: str, expected: dict[str, int], timeout_s: float = 60.0) -> list[dict]:
    """Waits until the API has ingested every alert message of the drill."""
    import json
    import urllib.request

    from suibou.infra.api_server import base_url

    url = f"{base_url(settings)}/v1/alerts?exercise=true&include_cancelled=true&limit=1000"
    deadline = time.monotonic() + timeout_s
    mine: list[dict] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            mine = [a for a in json.loads(response.read())["data"] if a.get("drill_id") == drill_id]
        if {a["alert_id"]: a["sequence"] for a in mine} == expected:
            return mine
        time.sleep(0.5)
    raise RuntimeError(f"the alert API did not receive all alerts of {drill_id} within {timeout_s:.0f}s")


_JST = dt.timezone(dt.timedelta(hours=9), "JST")


def _jst(value: dt.datetime) -> str:
    return value.astimezone(_JST).strftime("%m-%d %H:%M JST")


def _print_alerts(messages: list) -> None:
    """One line per alert: area, when it was raised, its peak level and when, how it ended."""
    if not messages:
        print("No alerts were raised.")
        return
    by_alert: dict[str, list] = {}
    for message in sorted(messages, key=lambda m: (m.event_time, m.sequence)):
        by_alert.setdefault(message.alert_id, []).append(message)
    print(f"{'area':<20} {'raised':<16} {'peak':>4}  {'peak at':<16} {'now':<8} levels (JMA colour)")
    for history in sorted(by_alert.values(), key=lambda h: h[0].event_time):
        peak = max(history, key=lambda m: (m.level, -m.event_time.timestamp()))
        last = history[-1]
        path = " -> ".join(f"{int(m.level)} {m.level.colour}" for m in history)
        print(f"{history[0].area_id:<20} {_jst(history[0].event_time):<16} {int(peak.level):>4}  "
              f"{_jst(peak.event_time):<16} {last.msg_type.value:<8} {path}")


def _drill(args: argparse.Namespace, settings: Settings, storm: str) -> None:
    from suibou import infra
    from suibou.drill import drill_alert_messages, run_drill
    from suibou.infra import api_server

    infra.up(settings)
    api_url = api_server.ensure_running(settings)
    result = run_drill(storm, settings, speed=args.speed, drill_id=args.drill_id, hold_minutes=args.hold_minutes)
    produced = drill_alert_messages(settings, result.drill_id, result.alert_offsets)
    expected: dict[str, int] = {}
    for message in produced:
        expected[message.alert_id] = max(expected.get(message.alert_id, -1), message.sequence)
    alerts = _wait_for_api(settings, result.drill_id, expected)
    print()
    print(f"EXERCISE - drill {result.drill_id} of {storm}: {len(alerts)} alerts, {len(produced)} alert "
          f"messages, all received by the alert API ({result.elapsed_s:.0f}s).")
    _print_alerts(produced)
    print()
    print(f"Alerts (JSON):     {api_url}/v1/alerts?exercise=true&include_cancelled=true")
    print(f"API documentation: {api_url}/docs")
    print("Stop everything:   suibou infra down")


class _QuietBeamImport(logging.Filter):
    """Beam warns on import about optional Google Cloud clients suibou never uses."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietBeamImport())


def main(argv: Sequence[str] | None = None) -> int:
    _configure_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pipeline"]:
        from pipelines.job import run

        run(argv[1:])
        return 0
    args = _parser().parse_args(argv)
    settings = get_settings()
    if args.command == "demo":
        _drill(args, settings, args.storm)
    elif args.command == "drill":
        _drill(args, settings, args.storm)
    elif args.command == "storms":
        from replay_data import list_storms, load_storm

        for name in list_storms():
            print(f"{name:<24} {load_storm(name).title}")
    elif args.command == "infra":
        from suibou import infra
        from suibou.infra import api_server

        if args.action == "up":
            infra.up(settings)
            api_server.ensure_running(settings)
        elif args.action == "down":
            api_server.stop(settings)
            infra.down(settings)
        else:
            state = infra.status(settings)
            state["api"] = "answering" if api_server.health(settings) else "stopped"
            for name, value in state.items():
                print(f"{name:<6} {value}")
    elif args.command == "api":
        from alert_api.main import serve

        serve(settings)
    elif args.command == "models":
        from models.train import main as train_main

        train_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
