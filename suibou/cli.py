"""The ``suibou`` command line.

    suibou demo                 set everything up, run a storm drill, serve the alerts
    suibou drill STORM          replay a stored storm through Kafka and the pipeline, then report
    suibou storms               list the stored storms
    suibou skill [STORM ...]    hits, misses, false alarms and lead times of stored storms' drills
    suibou import CSV ...       register a recorded storm so that `suibou drill NAME` replays it
    suibou infra up|down|status local Kafka broker, Prism runner, alert API (and --live: the live job)
    suibou api                  serve the alert API in the foreground
    suibou pipeline [...]       run the live fusion job, supervised, until stopped
    suibou gateway --catalogue  play a catalogue's gauges live, as a field gateway (synthetic values)
    suibou models train         train and export the ONNX models
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
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
        sub.add_argument("--speed", type=_speed, default=None,
                         help="storm seconds per wall second: 1 = real time, 60 = a storm hour per minute, "
                              "'max' = as fast as possible (the default)")
        sub.add_argument("--hold-minutes", type=float, default=30.0, help="hysteresis before an alert level is lowered")
        sub.add_argument("--drill-id", default=None, help="id stamped on every message (default: from storm and time)")
        sub.add_argument("--start", type=_start_time, default=None,
                         help="replay from this storm time, ISO 8601 with offset (e.g. 2005-09-04T21:00+09:00)")
        sub.add_argument("--report", default=None,
                         help="report file (.md) or folder (default: <SUIBOU_HOME>/reports/<drill id>/report.md)")
        sub.add_argument("--no-report", action="store_true", help="do not write the drill report")
        sub.add_argument("--runner", default="prism", choices=("prism", "flink"),
                         help="Beam runner of the fusion job: Prism, or Flink through suibou's job server")
        sub.add_argument("--grids", default="netcdf", choices=("netcdf", "grib2"),
                         help="write a built-in storm's rain grids as netCDF (default) or GRIB2 (docs/grids.md)")
    demo.add_argument("--storm", default="suginami-2005-mini")

    commands.add_parser("storms", help="list the stored storms")
    skill = commands.add_parser(
        "skill", help="warning skill of stored storms: drill each one (or read its latest report) and judge hits, "
                      "misses, false alarms and lead times against the targets (docs/skill.md)")
    skill.add_argument("storms", nargs="*", metavar="STORM", help="default: every stored storm")
    skill.add_argument("--from-reports", action="store_true",
                       help="judge the latest drill report of each storm instead of drilling it again")
    skill.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    importer = commands.add_parser("import", help="register a recorded storm (CSV of readings + station catalogue)")
    importer.add_argument("csv", help="readings: time,station_id,kind,value[,interval_s] (kind rain_mm or level_m)")
    importer.add_argument("--stations", required=True, help="station catalogue JSON (station_catalogue/1 or /2)")
    importer.add_argument("--name", required=True, help="storm name for `suibou drill NAME`")
    importer.add_argument("--title", default=None)
    importer.add_argument("--description", default=None)
    importer.add_argument("--skip-bad-rows", action="store_true",
                          help="import the good rows; list the bad ones (with line numbers) in rejected.csv")
    importer.add_argument("--replace", action="store_true", help="overwrite an imported storm of the same name")
    infra = commands.add_parser("infra", help="manage the local Kafka broker, Prism runner, alert API and live job")
    infra.add_argument("action", choices=("up", "down", "status"))
    infra.add_argument("--live", action="store_true",
                       help="with up: also run the live fusion job, supervised, beside the API")
    infra.add_argument("--catalogue", default="kanda-basin", help="with --live: the station catalogue it watches")
    commands.add_parser("api", help="serve the alert API in the foreground")
    commands.add_parser("pipeline", help="run the fusion job on live topics (Beam options may follow)",
                        add_help=False)
    gateway = commands.add_parser(
        "gateway", help="play a catalogue's gauges live, as a field gateway would (synthetic values, wall-clock "
                        "times, no clock ticks)")
    gateway.add_argument("--catalogue", required=True, help="station catalogue: a bundled name or a JSON file")
    gateway.add_argument("--interval", type=int, default=5, help="seconds between two readings of a gauge")
    gateway.add_argument("--via", choices=("http", "kafka"), default="http",
                         help="post to the alert API's ingest route with a gateway key, or produce to Kafka")
    gateway.add_argument("--key-file", default=None, help="file holding the gateway key (sbg_…), for --via http")
    gateway.add_argument("--url", default=None, help="the alert API (default: the local one)")
    gateway.add_argument("--jitter", type=float, default=0.0, help="deliver each reading up to S seconds late")
    gateway.add_argument("--gap-probability", type=float, default=0.0, help="chance that a reading is lost")
    gateway.add_argument("--reorder-probability", type=float, default=0.0,
                         help="chance that a reading arrives after the gauge's next one")
    gateway.add_argument("--silent", action="append", default=[], metavar="STATION[@after_s]",
                         help="a gauge that falls silent (from the start, or after_s seconds in); repeatable")
    gateway.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: until ^C)")
    gateway.add_argument("--rate", type=float, default=None, help="send at most N readings per second")
    gateway.add_argument("--seed", type=int, default=None, help="seed of the values and the link faults")
    gateway.add_argument("--station", action="append", default=None, help="only this gauge; repeatable")
    gateway.add_argument("--drill-id", default=None,
                         help="mark readings as exercises of this drill (for an exercise gateway)")
    gateway.add_argument("--grids", type=int, default=None, metavar="S",
                         help="also issue the catalogue's rain grids every S seconds (60-900) from the simulated "
                              "rain gauges (synthetic; --via kafka; files under <SUIBOU_HOME>/live-grids)")
    models = commands.add_parser("models", help="model training")
    models.add_argument("action", choices=("train",))
    return parser


def _speed(text: str) -> float | None:
    if text.strip().lower() in ("max", "inf"):
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("speed must be positive, or 'max'")
    return value


def _start_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("the start time needs a UTC offset, e.g. 2005-09-04T21:00+09:00")
    return value


def api_headers(settings: Settings) -> dict[str, str]:
    """The duty officer's view of the API for drill tooling: the admin key (sees exercises)."""
    from alert_api.config import get_api_settings, resolve_admin_key

    return {"Authorization": f"Bearer {resolve_admin_key(settings, get_api_settings())}"}


def _wait_for_api(settings: Settings, drill_id: str, expected: dict[str, int], timeout_s: float = 60.0) -> list[dict]:
    """Waits until the API has ingested every alert message of the drill."""
    import json
    import urllib.request

    from suibou.infra.api_server import base_url

    url = f"{base_url(settings)}/v1/alerts?exercise=true&include_cancelled=true&limit=1000"
    deadline = time.monotonic() + timeout_s
    mine: list[dict] = []
    request = urllib.request.Request(url, headers=api_headers(settings))
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=5) as response:
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
    from suibou.drill import drill_alert_messages, run_drill, write_report
    from suibou.infra import api_server

    infra.up(settings)
    api_url = api_server.ensure_running(settings)
    console = api_server.console_url(settings)
    if args.command == "demo":
        officer, password_file = api_server.ensure_demo_officer(settings, api_headers(settings))
        login = f"log in as {officer}, password in {password_file}"
    else:
        login = "duty officers log in; an admin makes accounts with POST /v1/admin/officers"
    _say(f"duty officer console: {console} ({login})")
    result = run_drill(storm, settings, speed=args.speed, drill_id=args.drill_id, hold_minutes=args.hold_minutes,
                       start_at=args.start, runner=args.runner, grid_format=args.grids)
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
    if not args.no_report:
        report = write_report(result, settings, produced, args.report)
        print(f"Drill report:      {report}")
    print(f"Alerts (JSON):     {api_url}/v1/alerts?exercise=true&include_cancelled=true")
    key_source = "$SUIBOU_ADMIN_KEY" if os.environ.get("SUIBOU_ADMIN_KEY") else settings.home / "api" / "admin.key"
    print(f"                   the API needs a key: the admin key is in {key_source}, e.g.")
    print(f'                   curl -H "Authorization: Bearer $(cat {key_source})" '
          f'"{api_url}/v1/alerts?exercise=true&include_cancelled=true"' if not os.environ.get("SUIBOU_ADMIN_KEY")
          else f'                   curl -H "Authorization: Bearer $SUIBOU_ADMIN_KEY" '
               f'"{api_url}/v1/alerts?exercise=true"')
    print(f"Console:           {console}")
    print(f"                   {login}")
    print(f"API documentation: {api_url}/docs")
    print("Stop everything:   suibou infra down")


def _skill(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from pathlib import Path

    from replay_data.skill import skill_dict
    from suibou.skill import JudgedDrill, SkillError, judge_storms, skill_report_lines

    try:
        judged = judge_storms(settings, args.storms, from_reports=args.from_reports)
    except SkillError as error:
        print(f"suibou skill: {error}", file=sys.stderr)
        return 2
    print("\n".join(skill_report_lines(judged)))
    if args.json:
        figures = {"storms": [skill_dict(d.skill) for d in judged if isinstance(d, JudgedDrill)],
                   "failed": [d.storm for d in judged if not isinstance(d, JudgedDrill)]}
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0 if all(isinstance(d, JudgedDrill) for d in judged) else 1


def _import(args: argparse.Namespace) -> int:
    from replay_data.library import StormImportError, import_storm

    try:
        result = import_storm(args.csv, args.stations, args.name, title=args.title, description=args.description,
                              skip_bad_rows=args.skip_bad_rows, replace=args.replace)
    except StormImportError as error:
        print(f"import refused: {error}", file=sys.stderr)
        return 2
    for row in result.rejected:
        print(f"skipped {row}", file=sys.stderr)
    print(f"imported {result.readings} readings as storm {result.name!r} ({_jst(result.start)} to "
          f"{_jst(result.end)}); {len(result.rejected)} row(s) skipped"
          + (f", listed in {result.folder / 'rejected.csv'}" if result.rejected else "") + ".")
    print(f"Replay it with:  suibou drill {result.name}")
    return 0


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    import threading
    from pathlib import Path

    from replay_data.gateway import (
        GatewayOptions,
        GatewaySimulator,
        HttpSink,
        KafkaSink,
        LiveGrids,
        RunReport,
        Sink,
        run,
        silent_map,
    )
    from suibou.catalogue import StationCatalogue

    try:
        catalogue = StationCatalogue.load(args.catalogue)
        options = GatewayOptions(interval_s=args.interval, jitter_s=args.jitter,
                                 gap_probability=args.gap_probability, reorder_probability=args.reorder_probability,
                                 silent=silent_map(args.silent), seed=args.seed, drill_id=args.drill_id,
                                 stations=tuple(args.station) if args.station else None)
        simulator = GatewaySimulator(catalogue, dt.datetime.now(dt.UTC), options)
        if args.grids is not None and args.via != "kafka":
            raise ValueError("--grids needs --via kafka: the ingest route takes readings only")
        grids = None if args.grids is None else LiveGrids(simulator, catalogue, settings.home / "live-grids",
                                                           args.grids)
    except (OSError, ValueError) as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    sink: Sink
    if args.via == "http":
        if not args.key_file:
            print("gateway: --via http needs --key-file with a gateway key (POST /v1/admin/gateways)", file=sys.stderr)
            return 2
        from suibou.infra.api_server import base_url

        try:
            key = Path(args.key_file).read_text().strip()
        except OSError as error:
            print(f"gateway: cannot read the key file: {error}", file=sys.stderr)
            return 2
        sink = HttpSink(args.url or base_url(settings), key)
    else:
        sink = KafkaSink(settings)
    _say(f"gateway: {len(simulator.stations)} gauges of {catalogue.name} every {args.interval} s via {args.via} "
         f"(synthetic values{', exercise ' + args.drill_id if args.drill_id else ', live'}); ^C stops")
    stop = threading.Event()
    said = [time.monotonic()]

    def progress(r: RunReport) -> None:  # every 30 s at most
        if time.monotonic() - said[0] >= 30:
            said[0] = time.monotonic()
            _say(f"sent {r.sent} (accepted {r.accepted}, duplicate {r.duplicate}, rejected {r.rejected}), "
                 f"lost {r.lost}, backlog {r.backlog}")

    try:
        report = run(simulator, sink, duration_s=args.duration, rate=args.rate, stop=stop, on_batch=progress,
                     grids=grids)
    except KeyboardInterrupt:
        stop.set()
        return 130
    finally:
        sink.close()
    for reason in report.reasons[:10]:
        print(f"rejected {reason}", file=sys.stderr)
    grid_note = "" if grids is None else f" and {grids.issued} grid notices"
    print(f"generated {report.generated} readings{grid_note}: {report.sent} sent ({report.accepted} accepted, "
          f"{report.duplicate} duplicate, {report.rejected} rejected), {report.lost} readings lost on the link, "
          f"{report.backlog} not sent")
    return 0


class _QuietBeamImport(logging.Filter):
    """Drops two harmless Beam messages that would alarm an operator.

    Beam warns on import about optional Google Cloud clients suibou never uses;
    and Prism asks the SDK harness to finalise bundles that registered nothing
    to finalise, which the harness logs as an error that Prism then ignores.
    """

    _HARMLESS = ("apitools not found", "Bundle is not in a finalizable state")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        return not any(phrase in text for phrase in self._HARMLESS)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietBeamImport())
    # kafka-python logs every coordinator move, slow poll and refused connection
    # (one a second while a broker is away); the clients here retry on their own,
    # and their callers report what matters (a broker that stays away) in
    # suibou's own words.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _on_flink(argv: Sequence[str]) -> bool:
    """Whether ``suibou pipeline`` arguments ask for the Flink runner.

    Examples:
        >>> _on_flink(["--runner", "flink"]), _on_flink(["--runner=flink"]), _on_flink(["--catalogue", "x"])
        (True, True, False)
    """
    for index, arg in enumerate(argv):
        if arg == "--runner" and index + 1 < len(argv):
            return argv[index + 1] == "flink"
        if arg.startswith("--runner="):
            return arg.partition("=")[2] == "flink"
    return False


def main(argv: Sequence[str] | None = None) -> int:
    _configure_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pipeline"]:
        if any(a.split("=")[0] in ("--end-source", "--start-offsets") for a in argv[1:]) or _on_flink(argv[1:]):
            from pipelines.job import run

            # A bounded or explicitly placed run, once; so is a run on Flink, which
            # the live supervisor (suibou.live, Prism's own) does not drive.
            try:
                run(argv[1:])
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the job was stopped on the way out
                return 130
            return 0
        from suibou.live import main as live_main

        return live_main(argv[1:], get_settings())
    args = _parser().parse_args(argv)
    settings = get_settings()
    if args.command in {"demo", "drill"}:
        _drill(args, settings, args.storm)
    elif args.command == "storms":
        from replay_data import list_storms
        from replay_data.library import imported_storms, open_storm, storm_cache
        from replay_data.storms import load_storm

        imported = set(imported_storms(storm_cache(settings)))
        for name in list_storms():
            storm = open_storm(storm_cache(settings) / name) if name in imported else load_storm(name)
            print(f"{name:<20} {storm.provenance:<26} {storm.title}")
    elif args.command == "skill":
        return _skill(args, settings)
    elif args.command == "import":
        return _import(args)
    elif args.command == "infra":
        from suibou import infra
        from suibou.infra import api_server, live_job

        if args.action == "up":
            infra.up(settings)
            api_server.ensure_running(settings)
            if args.live:
                live_job.ensure_running(settings, args.catalogue)
        elif args.action == "down":
            live_job.stop(settings)
            api_server.stop(settings)
            infra.down(settings)
        else:
            state = infra.status(settings)
            state["api"] = "answering" if api_server.health(settings) else "stopped"
            state["live"] = live_job.status(settings)
            for name, value in state.items():
                print(f"{name:<16} {value}")
    elif args.command == "api":
        from alert_api.main import serve

        serve(settings)
    elif args.command == "gateway":
        return _gateway(args, settings)
    elif args.command == "models":
        from models.train import main as train_main

        train_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
