"""The benchmark row format: what one line of votes.jsonl / comparisons.jsonl holds, in CMI-RewardBench names.

This is the compatibility contract with CMI-RewardBench's readers: field names (with their hyphens
and spaces), value words (``model_a``/``model_b``/``both``) and key order. The TypedDicts below are
the schema; the functions build rows in exactly that order, so the same data gives byte-identical
JSONL. Pure: no queries, no files.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypedDict

if TYPE_CHECKING:
    from annotate.agreement.report import ComparisonLabel
    from annotate.exports.selectors import ComparisonFacts

SOURCE = "cmi-arena-annotation"
# Canonical choices ("t" is a tie: no preference) and aggregated majorities ("tie") in the benchmark's words.
PREFERENCE = {"a": "model_a", "b": "model_b", "t": "both", "tie": "both"}
# The benchmark's modality words (its evaluator groups by them as-is); the platform's letter goes in modality_code.
MODALITY_WORDS = {"T": "text", "L": "text+lyrics", "A": "text+ref", "C": "text+lyrics+ref"}


class VoteValues(NamedTuple):
    """One vote as read for an export (``VOTE_FIELDS`` order); choices in canonical orientation."""

    comparison_id: int
    annotator_id: int
    alignment_choice: str
    musicality_choice: str
    alignment_confidence: int
    musicality_confidence: int
    feedback: str
    presented_swapped: bool
    listened_a_s: float
    listened_b_s: float
    time_on_task_s: float | None
    vote_time: str  # created_at as ``iso_time`` writes it


VOTE_FIELDS = VoteValues._fields[:-1]  # the Vote columns an export reads, named as on the model; then vote_time


# The schema, block by block, in key order. Functional syntax because the names have hyphens and spaces.
ComparisonFields = TypedDict(
    "ComparisonFields",
    {
        "audio-path": str,
        "audio2": str,
        "ref-audio-path": str,  # "" when the instruction has no reference clip
        "prompt": str,
        "lyrics": str,
        "prompt id": str,
        "model_a": str,
        "model_b": str,
    },
)
ComparisonTail = TypedDict(
    "ComparisonTail",
    {
        "source": str,
        "split": str,  # train | validation | test
        "modality": str,  # text | text+lyrics | text+ref | text+lyrics+ref
        "modality_code": str,  # T | L | A | C
        "vocal": bool | None,
        "comparison id": str,
        "gold-alignment": str,  # model_a | model_b | both | ""
        "gold-musicality": str,
        "attention_check": bool,
    },
)
VoteAnswers = TypedDict(
    "VoteAnswers",
    {
        "user id": str,
        "preference-alignment": str,  # model_a | model_b | both (no preference)
        "preference-musicality": str,
        "confidence_preference-alignment": int,
        "confidence_preference-musicality": int,
    },
)


class VoteExtras(TypedDict):
    feedback: str
    listened_seconds_a: float
    listened_seconds_b: float
    presented_order: list[str]  # display order, left first, in model_a/model_b words
    time_on_task_s: float | None
    vote_time: str  # ISO 8601, UTC, "Z"


class VoteRow(ComparisonFields, ComparisonTail, VoteAnswers, VoteExtras):
    """One votes.jsonl line (and the same line in train/validation/test.jsonl)."""


@functools.lru_cache(maxsize=4096)  # each clip appears in many comparisons; memory stays bounded
def audio_name(sha: str, file: str) -> str:
    """A clip's path inside the export: named by content, keeping the original extension."""
    return f"audio/{sha}{os.path.splitext(file)[1].lower()}"


def comparison_key(facts: ComparisonFacts) -> str:
    """A content id for a comparison (instruction + ordered clips), stable across databases and re-imports."""
    return content_key(facts.instruction_hash, facts.clip_a_sha, facts.clip_b_sha)


def content_key(instruction_hash: str, clip_a_sha: str, clip_b_sha: str) -> str:
    """The ``comparison id`` of exported rows, from the instruction's content hash and the two clips' sha256."""
    content = f"{instruction_hash}|{clip_a_sha}|{clip_b_sha}"
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def comparison_fields(facts: ComparisonFacts) -> ComparisonFields:
    return {
        "audio-path": audio_name(facts.clip_a_sha, facts.clip_a_file),
        "audio2": audio_name(facts.clip_b_sha, facts.clip_b_file),
        "ref-audio-path": audio_name(facts.reference_sha, facts.reference_file) if facts.reference_sha else "",
        "prompt": facts.prompt,
        "lyrics": facts.lyrics,
        "prompt id": facts.prompt_id,
        "model_a": facts.clip_a_system,
        "model_b": facts.clip_b_system,
    }


def comparison_tail(facts: ComparisonFacts, split: str) -> ComparisonTail:
    return {
        "source": SOURCE,
        "split": split,
        "modality": MODALITY_WORDS[facts.modality],
        "modality_code": facts.modality,
        "vocal": facts.vocal,
        "comparison id": comparison_key(facts),
        "gold-alignment": PREFERENCE.get(facts.gold_alignment, ""),
        "gold-musicality": PREFERENCE.get(facts.gold_musicality, ""),
        "attention_check": facts.is_attention_check,
    }


def vote_answers(pseudonym: str, vote: VoteValues) -> VoteAnswers:
    return {
        "user id": pseudonym,
        "preference-alignment": PREFERENCE[vote.alignment_choice],
        "preference-musicality": PREFERENCE[vote.musicality_choice],
        "confidence_preference-alignment": vote.alignment_confidence,
        "confidence_preference-musicality": vote.musicality_confidence,
    }


def vote_extras(vote: VoteValues) -> VoteExtras:
    return {
        "feedback": vote.feedback,
        "listened_seconds_a": vote.listened_a_s,
        "listened_seconds_b": vote.listened_b_s,
        # Display order, left first: which canonical clip the annotator saw as "A".
        "presented_order": ["model_b", "model_a"] if vote.presented_swapped else ["model_a", "model_b"],
        "time_on_task_s": vote.time_on_task_s,
        "vote_time": vote.vote_time,
    }


def vote_row(facts: ComparisonFacts, split: str, pseudonym: str, vote: VoteValues) -> VoteRow:
    """One votes.jsonl row."""
    return {  # type: ignore[return-value]  # mypy can't merge TypedDicts by unpacking
        **comparison_fields(facts),
        **comparison_tail(facts, split),
        **vote_answers(pseudonym, vote),
        **vote_extras(vote),
    }


def comparison_row(
    facts: ComparisonFacts, split: str, label: ComparisonLabel, adjudicated: dict[str, str] | None = None
) -> dict[str, object]:
    """One comparisons.jsonl row: the comparison's fields, its label per question, then its tail.

    The label is staff's adjudication where there is one (``adjudicated``: canonical choices per question),
    else the votes' majority; ``label_source`` says which, and the vote counts are kept either way.
    """
    row: dict[str, object] = {**comparison_fields(facts), "vote_count": label.vote_count}
    for question in ("alignment", "musicality"):
        answer = getattr(label, question)
        row[f"preference-{question}"] = PREFERENCE[adjudicated[question] if adjudicated else answer.majority]
        row[f"confidence_preference-{question}"] = round(answer.mean_confidence, 6)
        row[f"soft_label-{question}"] = round(answer.soft_label, 6)
        row[f"votes_a-{question}"] = answer.votes_a
        row[f"votes_b-{question}"] = answer.votes_b
        row[f"votes_tie-{question}"] = answer.votes_tie
    row["label_source"] = "adjudicated" if adjudicated else "majority"
    return {**row, **comparison_tail(facts, split)}


# ensure_ascii=False keeps lyrics and feedback readable; one encoder, not one per row as json.dumps would build.
_ENCODER = json.JSONEncoder(ensure_ascii=False)
# The encoder's own string escaper (C), for the fields written into the vote line's template.
_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def dumps(row: object) -> bytes:
    """One JSONL line."""
    return (_ENCODER.encode(row) + "\n").encode("utf-8")


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _json_float(value: float | None) -> str:
    """A float as ``json.dumps`` writes it (allow_nan: NaN and the infinities as JavaScript names)."""
    if value is None:
        return "null"
    text = float.__repr__(value)
    return _NON_FINITE.get(text, text)


_ORDER = {False: '["model_a", "model_b"]', True: '["model_b", "model_a"]'}


class VoteLines:
    """Encodes vote rows as JSONL lines, byte-identical to ``dumps(vote_row(...))``, but serialising the
    comparison's fields once per comparison instead of once per vote (votes arrive grouped by comparison),
    each pseudonym once, and the vote's own fields into a fixed template rather than through a dict."""

    def __init__(self) -> None:
        self.comparison_id: int | None = None
        self.head = self.fields_json = self.tail_json = ""
        self.users: dict[str, str] = {}

    def start(self, facts: ComparisonFacts, split: str) -> tuple[ComparisonFields, ComparisonTail]:
        """Serialise a comparison's part of its lines; returns its fields and tail for the caller to reuse."""
        fields, tail = comparison_fields(facts), comparison_tail(facts, split)
        self.comparison_id = facts.comparison_id
        self.fields_json = _ENCODER.encode(fields)[:-1]  # '{"audio-path": …, "model_b": …' (no closing brace)
        self.tail_json = _ENCODER.encode(tail)[1:]  # '"source": …, "attention_check": …}' (no opening brace)
        self.head = f"{self.fields_json}, {self.tail_json[:-1]}"
        return fields, tail

    def comparison_line(self, label: ComparisonLabel, adjudicated: dict[str, str] | None) -> bytes:
        """The comparisons.jsonl line of the comparison last started: ``dumps(comparison_row(...))``, byte for byte."""
        parts = [self.fields_json, f', "vote_count": {int.__repr__(label.vote_count)}']
        for question, answer in (("alignment", label.alignment), ("musicality", label.musicality)):
            preference = PREFERENCE[adjudicated[question] if adjudicated else answer.majority]
            parts.append(
                f', "preference-{question}": "{preference}", '
                f'"confidence_preference-{question}": {_json_float(round(answer.mean_confidence, 6))}, '
                f'"soft_label-{question}": {_json_float(round(answer.soft_label, 6))}, '
                f'"votes_a-{question}": {int.__repr__(answer.votes_a)}, '
                f'"votes_b-{question}": {int.__repr__(answer.votes_b)}, '
                f'"votes_tie-{question}": {int.__repr__(answer.votes_tie)}'
            )
        parts.append(f', "label_source": "{"adjudicated" if adjudicated else "majority"}", {self.tail_json}\n')
        return "".join(parts).encode()

    def line(self, facts: ComparisonFacts, split: str, pseudonym: str, vote: VoteValues) -> bytes:
        if facts.comparison_id != self.comparison_id:
            self.start(facts, split)
        user = self.users.get(pseudonym)
        if user is None:
            user = self.users[pseudonym] = _encode_str(pseudonym)
        return (
            f'{self.head}, "user id": {user}, "preference-alignment": "{PREFERENCE[vote.alignment_choice]}", '
            f'"preference-musicality": "{PREFERENCE[vote.musicality_choice]}", '
            f'"confidence_preference-alignment": {int.__repr__(vote.alignment_confidence)}, '
            f'"confidence_preference-musicality": {int.__repr__(vote.musicality_confidence)}, '
            f'"feedback": {_encode_str(vote.feedback)}, "listened_seconds_a": {_json_float(vote.listened_a_s)}, '
            f'"listened_seconds_b": {_json_float(vote.listened_b_s)}, '
            f'"presented_order": {_ORDER[vote.presented_swapped]}, '
            f'"time_on_task_s": {_json_float(vote.time_on_task_s)}, "vote_time": "{vote.vote_time}"}}\n'
        ).encode()


def iso_time(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a "Z": what ``vote_time`` holds (``selectors.export_vote_values`` has PostgreSQL
    write the same text, which saves parsing a datetime per vote only to format it again)."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
