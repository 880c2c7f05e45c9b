"""Human labels carried by manifest rows (CMI-Pref style): parsed here, written as votes by ``services``.

Pure: no queries, no files. A row's labels become one vote of an external annotator (one account per
``source`` + ``user id``). A malformed label value is a line-numbered import problem (nothing is imported);
a row whose labels can't make a whole vote (no ``user id``, one question only, no confidence, Music Arena's
single ``preference``) still imports its comparison, and the report says why its labels were ignored.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

# The benchmark's preference words -> canonical choices in the row's orientation (a = audio-path).
PREFERENCE_CHOICES = {"model_a": "a", "model_b": "b", "both": "t", "neither": "t"}
QUESTIONS = ("alignment", "musicality")
SPLITS = ("train", "validation", "test")
DEFAULT_SOURCE = "manifest"  # rows without a `source`
MAX_FEEDBACK_CHARS = 5000
MAX_ID_CHARS = 200


@dataclass(frozen=True)
class RowLabels:
    """One row's labels, choices in the row's orientation: "a" = the row's audio-path, "t" = no preference."""

    source: str
    user_id: str
    alignment: str
    musicality: str
    alignment_confidence: int
    musicality_confidence: int
    feedback: str
    split: str
    presented_swapped: bool
    listened_a_s: float
    listened_b_s: float
    time_on_task_s: float | None
    vote_time: dt.datetime | None

    @property
    def has_tie(self) -> bool:
        return "t" in (self.alignment, self.musicality)


@dataclass(frozen=True)
class ParsedLabels:
    labels: RowLabels | None = None
    ignored: str = ""  # why a row with labels makes no vote
    problems: tuple[str, ...] = ()


def _present(data: dict[str, Any], key: str) -> bool:
    return data.get(key) not in (None, "")


def has_labels(data: dict[str, Any]) -> bool:
    return any(_present(data, f"preference-{q}") for q in QUESTIONS) or _present(data, "preference")


def _choice(data: dict[str, Any], question: str) -> tuple[str | None, str]:
    value = data.get(f"preference-{question}")
    if value in (None, ""):
        return None, ""
    choice = PREFERENCE_CHOICES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if choice is None:
        return None, f"preference-{question} must be model_a, model_b, both or neither, got {value!r}"
    return choice, ""


def _confidence(data: dict[str, Any], question: str) -> tuple[int | None, str]:
    key = f"confidence_preference-{question}"
    value = data.get(key)
    if value in (None, ""):
        return None, ""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None, f"{key} must be a number from 1 to 5, got {data[key]!r}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, f"{key} must be a number from 1 to 5, got {data[key]!r}"
    if value != int(value) or not 1 <= value <= 5:
        return None, f"{key} must be a whole number from 1 to 5, got {data[key]!r}"
    return int(value), ""


def _seconds(data: dict[str, Any], key: str) -> tuple[float | None, str]:
    value = data.get(key)
    if value is None:
        return None, ""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None, f"{key} must be a number of seconds (0 or more), got {value!r}"
    return float(value), ""


def _vote_time(data: dict[str, Any]) -> tuple[dt.datetime | None, str]:
    value = data.get("vote_time")
    if value in (None, ""):
        return None, ""
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None, f"vote_time must be an ISO 8601 time, got {value!r}"
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)), ""


def _text(data: dict[str, Any], key: str, limit: int) -> tuple[str, str]:
    value = data.get(key)
    if value is None:
        return "", ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "", f"{key} must be text, got {value!r}"
    text = str(value).strip()
    if "\x00" in text or len(text) > limit:
        return "", f"{key} must be at most {limit} characters without NUL"
    return text, ""


def parse_labels(data: dict[str, Any]) -> ParsedLabels:
    """The labels of one manifest row: a vote, a reason to ignore them, or problems (bad values)."""
    if not has_labels(data):
        return ParsedLabels()
    choices, confidences, problems = {}, {}, []
    for question in QUESTIONS:
        choices[question], problem = _choice(data, question)
        problems.append(problem)
        confidences[question], problem = _confidence(data, question)
        problems.append(problem)
    source, problem_source = _text(data, "source", MAX_ID_CHARS)
    user_id, problem_user = _text(data, "user id", MAX_ID_CHARS)
    feedback, problem_feedback = _text(data, "feedback", MAX_FEEDBACK_CHARS)
    split, problem_split = _text(data, "split", 20)
    listened_a, problem_a = _seconds(data, "listened_seconds_a")
    listened_b, problem_b = _seconds(data, "listened_seconds_b")
    time_on_task, problem_time = _seconds(data, "time_on_task_s")
    vote_time, problem_vote_time = _vote_time(data)
    problems += [problem_source, problem_user, problem_feedback, problem_split, problem_a, problem_b]
    problems += [problem_time, problem_vote_time]
    if split and split not in SPLITS:
        problems.append(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if any(problems):
        return ParsedLabels(problems=tuple(p for p in problems if p))
    ignored = _why_ignored(data, choices, confidences, user_id)
    if ignored:
        return ParsedLabels(ignored=ignored)
    return ParsedLabels(
        RowLabels(
            source=source or DEFAULT_SOURCE,
            user_id=user_id,
            alignment=choices["alignment"] or "",
            musicality=choices["musicality"] or "",
            alignment_confidence=confidences["alignment"] or 0,
            musicality_confidence=confidences["musicality"] or 0,
            feedback=feedback,
            split=split,
            presented_swapped=data.get("presented_order") == ["model_b", "model_a"],
            listened_a_s=listened_a or 0.0,
            listened_b_s=listened_b or 0.0,
            time_on_task_s=time_on_task,
            vote_time=vote_time,
        )
    )


def _why_ignored(
    data: dict[str, Any], choices: dict[str, str | None], confidences: dict[str, int | None], user_id: str
) -> str:
    if not any(choices.values()):
        return "only an overall `preference` (Music Arena style); a vote needs both questions"
    missing = [q for q in QUESTIONS if choices[q] is None]
    if missing:
        return f"no preference-{missing[0]}: a vote needs both questions"
    missing = [q for q in QUESTIONS if confidences[q] is None]
    if missing:
        return f"no confidence_preference-{missing[0]}"
    if not user_id:
        return "no `user id`: labels can't be given to an annotator"
    return ""
