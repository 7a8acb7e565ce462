"""``suibou skill``: the warning skill of stored storms, from new drills or from their latest reports.

Each storm is replayed as a drill (:func:`suibou.drill.run_drill`, the same
machinery as ``suibou drill``), its report written, and its alerts judged
against the storm's truth (:mod:`replay_data.skill`, defined in
``docs/skill.md``). With ``from_reports`` the newest drill report of each
storm is judged again instead, from the alert messages its ``report.json``
keeps.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from replay_data.skill import StormSkill
from suibou.settings import Settings


class SkillError(RuntimeError):
    """A storm or report that cannot be judged; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class JudgedDrill:
    """The skill of one storm's drill, and the report it came from (or was written to)."""

    skill: StormSkill
    report: Path


@dataclasses.dataclass(frozen=True)
class FailedDrill:
    """A storm whose drill did not finish (the runner failed, most likely), and why."""

    storm: str
    error: str


def _say(message: str) -> None:
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def resolve_storms(names: Sequence[str]) -> list[str]:
    """``names``, or every stored storm when empty.

    Raises:
        SkillError: A name that is not a stored storm (the message lists them).
    """
    from replay_data import list_storms

    known = list_storms()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SkillError(f"unknown storm{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"stored storms: {', '.join(known)}")
    return list(names) or known


def latest_report(settings: Settings, storm: str) -> Path | None:
    """The newest ``report.json`` of a drill of ``storm`` under ``<SUIBOU_HOME>/reports``."""
    found = []
    for path in (Path(settings.home) / "reports").glob("*/report.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("storm") == storm:
            found.append((path.stat().st_mtime, path))
    return max(found)[1] if found else None


def judge_report(settings: Settings, path: Path) -> StormSkill:
    """Judges a stored drill report again, from the alert messages it keeps.

    Raises:
        SkillError: The report predates reports that keep their alert messages.
    """
    from replay_data.library import prepare_storm
    from replay_data.report import drill_skill

    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "alert_messages" not in data:
        raise SkillError(f"{path} was written before drill reports kept their alert messages; "
                         f"run `suibou skill {data.get('storm', 'STORM')}` to drill the storm again")
    storm = prepare_storm(data["storm"], settings)
    return drill_skill(storm, data["alert_messages"], data.get("drill_id"))


def drill_and_judge(settings: Settings, storm_name: str, progress: bool = True) -> JudgedDrill:
    """Replays ``storm_name`` as a drill, writes its report and judges its alerts."""
    from replay_data.library import prepare_storm
    from replay_data.report import drill_skill
    from suibou.drill import alert_chain, drill_alert_messages, run_drill, write_report

    result = run_drill(storm_name, settings, progress=progress)
    alerts = drill_alert_messages(settings, result.drill_id, result.alert_offsets)
    report = write_report(result, settings, alerts)
    storm = prepare_storm(storm_name, settings)
    return JudgedDrill(drill_skill(storm, alert_chain(alerts, result.drill_id), result.drill_id), report)


def judge_storms(settings: Settings, names: Sequence[str], *, from_reports: bool = False,
                 progress: bool = True) -> list[JudgedDrill | FailedDrill]:
    """The skill of each storm (every stored storm when ``names`` is empty).

    A drill that fails is listed as a :class:`FailedDrill` and the next storm is
    drilled: one runner failure must not lose an hour of drills.

    Raises:
        SkillError: An unknown storm, or (``from_reports``) a storm without a usable report;
            checked for every storm before any drill runs.
    """
    storms = resolve_storms(names)
    if from_reports:
        reports = {storm: latest_report(settings, storm) for storm in storms}
        absent = [storm for storm, path in reports.items() if path is None]
        if absent:
            raise SkillError(f"no drill report of {', '.join(absent)} under {Path(settings.home) / 'reports'}; "
                             f"run `suibou skill {' '.join(absent)}` (or `suibou drill STORM`) first")
        return [JudgedDrill(judge_report(settings, path), path) for path in reports.values() if path is not None]
    from suibou import infra

    infra.up(settings)
    judged: list[JudgedDrill | FailedDrill] = []
    for number, storm in enumerate(storms, 1):
        _say(f"skill: drill {number} of {len(storms)}: {storm}")
        try:
            judged.append(drill_and_judge(settings, storm, progress))
        except RuntimeError as error:
            reason = str(error).splitlines()[0][:300]
            _say(f"skill: the drill of {storm} failed: {reason}")
            judged.append(FailedDrill(storm, reason))
    return judged


def skill_report_lines(judged: Sequence[JudgedDrill | FailedDrill]) -> list[str]:
    """Markdown: one section per storm, then every storm's figures against the targets."""
    from replay_data.skill import skill_markdown, summary_markdown

    lines = []
    for drill in judged:
        if isinstance(drill, FailedDrill):
            lines += [f"## {drill.storm}", "", f"**The drill failed:** {drill.error}", ""]
            continue
        skill = drill.skill
        lines += [f"## {skill.storm}: {skill.title}", "",
                  f"Drill `{skill.drill_id}`; report: `{drill.report}`.", ""]
        lines += skill_markdown(skill, heading="###")
    lines += ["## Summary against the targets", ""]
    lines += summary_markdown([d.skill for d in judged if isinstance(d, JudgedDrill)])
    failed = [d.storm for d in judged if isinstance(d, FailedDrill)]
    if failed:
        lines += [f"Not judged (drill failed): {', '.join(failed)}.", ""]
    return lines
