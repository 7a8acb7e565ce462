"""Texts of an alert message in Japanese and English, for every partner format.

Names follow Japan's five-level scale (警戒レベル): on rivers the water-level
information (氾濫注意情報 … 氾濫発生情報), on slopes the Japan Meteorological
Agency's heavy-rain advisories and warnings up to the landslide warning
(土砂災害警戒情報, level 4) and the emergency warning (level 5); the action each
level asks of residents is the Cabinet Office's evacuation information
(高齢者等避難 at 3, 避難指示 at 4, 緊急安全確保 at 5). Drivers are told what
matters on the road.

Exercise messages carry :data:`EXERCISE_LABEL` at the start of every text.

Examples:
    >>> from suibou.contracts import Hazard, MsgType
    >>> t = message_texts(Hazard.FLOOD, AlertLevel.DANGER, MsgType.UPDATE, "Zenpukuji River", "善福寺川",
    ...                   exercise=True)
    >>> t.headline_ja
    'EXERCISE/訓練 善福寺川 氾濫危険情報（警戒レベル4）'
    >>> t.headline_en
    'EXERCISE/訓練 Zenpukuji River: flood danger (alert level 4)'
"""

from __future__ import annotations

import dataclasses

from suibou.contracts import AlertLevel, Hazard, MsgType

#: Opens every text of an exercise message, in both languages.
EXERCISE_LABEL = "EXERCISE/訓練"

_EVENT_JA = {
    Hazard.FLOOD: {2: "氾濫注意情報", 3: "氾濫警戒情報", 4: "氾濫危険情報", 5: "氾濫発生情報"},
    Hazard.LANDSLIDE: {2: "大雨注意報", 3: "大雨警報（土砂災害）", 4: "土砂災害警戒情報",
                       5: "大雨特別警報（土砂災害）"},
}
_EVENT_EN = {
    Hazard.FLOOD: {2: "flood caution", 3: "flood warning", 4: "flood danger", 5: "flooding occurring"},
    Hazard.LANDSLIDE: {2: "heavy rain advisory", 3: "heavy rain warning (landslide)", 4: "landslide warning",
                       5: "heavy rain emergency warning (landslide)"},
}
_HAZARD_JA = {Hazard.FLOOD: "洪水", Hazard.LANDSLIDE: "土砂災害"}
_HAZARD_EN = {Hazard.FLOOD: "flood", Hazard.LANDSLIDE: "landslide"}

_INSTRUCTION_JA = {
    1: "警戒は解除されました。引き続き最新の情報に注意してください。",
    2: "今後の情報に注意し、避難行動を確認してください。川沿いの道路では注意して運転してください。",
    3: "高齢者等は避難してください（高齢者等避難）。川沿い・低い土地の道路は避けてください。",
    4: "危険な場所から全員避難してください（避難指示）。この区域の道路は通行しないでください。",
    5: "命の危険があります。直ちに身の安全を確保してください（緊急安全確保）。この区域に入らないでください。",
}
_INSTRUCTION_EN = {
    1: "The alert is over. Keep following the latest information.",
    2: "Follow the latest information and check your evacuation plan. Drive with care on riverside roads.",
    3: "Older people and those who need help should evacuate. Avoid riverside and low-lying roads.",
    4: "Everyone must leave dangerous places (evacuation order). Do not drive through this area.",
    5: "Danger to life: secure your safety immediately (emergency safety measure). Do not enter this area.",
}


@dataclasses.dataclass(frozen=True)
class MessageTexts:
    """The human-readable parts of one message, per language."""

    event_ja: str
    event_en: str
    headline_ja: str
    headline_en: str
    description_ja: str
    description_en: str
    instruction_ja: str
    instruction_en: str

    @property
    def headline(self) -> str:
        """Both headlines, Japanese first."""
        return f"{self.headline_ja} / {self.headline_en}"


def event_name(hazard: Hazard, level: AlertLevel, language: str) -> str:
    """The information a level stands for (e.g. 氾濫危険情報, flood danger); the hazard at level 1."""
    if level <= AlertLevel.NONE:
        return _HAZARD_JA[hazard] if language == "ja" else _HAZARD_EN[hazard]
    return (_EVENT_JA if language == "ja" else _EVENT_EN)[hazard][int(level)]


def message_texts(
    hazard: Hazard,
    level: AlertLevel,
    msg_type: MsgType,
    area_name: str,
    area_name_ja: str,
    *,
    exercise: bool = False,
    officer_action: str | None = None,
    previous_level: AlertLevel | None = None,
) -> MessageTexts:
    """Builds the texts of one message.

    Args:
        hazard: Flood or landslide.
        level: The level after the message.
        msg_type: Alert, Update or Cancel.
        area_name: English name of the area (the area id if there is none).
        area_name_ja: Japanese name of the area.
        exercise: Prefix every text with :data:`EXERCISE_LABEL`.
        officer_action: ``issue``, ``update``, ``cancel`` or ``acknowledge`` for
            a duty officer's message; ``None`` for the pipeline's.
        previous_level: Level before the message, to say raised or lowered.

    Returns:
        The texts.
    """
    name_en = area_name or area_name_ja
    name_ja = area_name_ja or area_name
    label = f"{EXERCISE_LABEL} " if exercise else ""
    if msg_type is MsgType.CANCEL:
        headline_ja = f"{label}{name_ja} {_HAZARD_JA[hazard]}に関する情報の解除"
        headline_en = f"{label}{name_en}: {_HAZARD_EN[hazard]} alert cancelled"
        what_ja = "警戒を解除しました。"
        what_en = "The alert has been cancelled."
    else:
        event_ja, event_en = event_name(hazard, level, "ja"), event_name(hazard, level, "en")
        headline_ja = f"{label}{name_ja} {event_ja}（警戒レベル{int(level)}）"
        headline_en = f"{label}{name_en}: {event_en} (alert level {int(level)})"
        what_ja = f"{name_ja}に{event_ja}（警戒レベル{int(level)}）が出ています。"
        what_en = f"{event_en.capitalize()} (alert level {int(level)}) for {name_en}."
        if previous_level is not None and previous_level > AlertLevel.NONE and previous_level != level:
            up = level > previous_level
            what_ja += f"警戒レベル{int(previous_level)}から{'引き上げ' if up else '引き下げ'}ました。"
            what_en += f" {'Raised' if up else 'Lowered'} from level {int(previous_level)}."
    by_ja, by_en = _source_texts(officer_action)
    exercise_ja = "これは訓練です。実際の警報ではありません。" if exercise else ""
    exercise_en = " This is an exercise, not a real alert." if exercise else ""
    return MessageTexts(
        event_ja=f"{label}{event_name(hazard, level, 'ja')}",
        event_en=f"{label}{event_name(hazard, level, 'en')}",
        headline_ja=headline_ja,
        headline_en=headline_en,
        description_ja=f"{label}{what_ja}{by_ja}{exercise_ja}",
        description_en=f"{label}{what_en}{by_en}{exercise_en}",
        instruction_ja=f"{label}{_INSTRUCTION_JA[1 if msg_type is MsgType.CANCEL else int(level)]}",
        instruction_en=f"{label}{_INSTRUCTION_EN[1 if msg_type is MsgType.CANCEL else int(level)]}",
    )


def _source_texts(officer_action: str | None) -> tuple[str, str]:
    if officer_action is None:
        return ("水位・雨量の観測と予測に基づく自動判定です。",
                " Decided automatically from gauge readings and forecasts.")
    if officer_action == "acknowledge":
        return "水防当番が確認しました。", " Confirmed by the river bureau duty officer."
    return "水防当番が発表しました。", " Issued by the river bureau duty officer."


__all__ = ["EXERCISE_LABEL", "MessageTexts", "event_name", "message_texts"]
