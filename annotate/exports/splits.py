"""Leakage-free train/validation/test assignment of comparisons. Pure Python, no Django.

Comparisons are grouped so that every comparison of one instruction (``prompt id``), and
optionally every instruction that shares a reference clip, lands in the same split. Groups,
not comparisons, are drawn: first the test split (balanced across modality T/L/A/C and,
within each, vocal/instrumental when asked), then validation, then the rest is train.
Group order is the sorted group keys shuffled by ``random.Random(seed)``, so the same
items and seed always give the same assignment.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "validation", "test")
MODALITIES = ("T", "L", "A", "C")
VOCAL_KEYS = ("instrumental", "vocal")


@dataclass(frozen=True, slots=True)
class SplitItem:
    """``count`` comparisons of one prompt that share every field below (one row of the compact table)."""

    prompt_key: str
    reference_key: str  # "" when the instruction has no reference clip
    modality: str
    vocal: bool | None  # None: unknown
    count: int = 1

    @property
    def cell(self) -> tuple[str, str]:
        return self.modality, vocal_label(self.vocal)


@dataclass
class SplitPlan:
    split_of_prompt: dict[str, str]  # prompt key -> split: every comparison of a prompt is in its split
    test_requested: int
    validation_requested: int
    # Empty when the test split got everything asked of it; otherwise what is missing, and why.
    shortfall: dict[str, Any] = field(default_factory=dict)  # JSON: requested, selected, messages, by_modality

    def counts(self, items: Iterable[SplitItem]) -> dict[str, int]:
        """Comparisons per split."""
        counter: Counter[str] = Counter()
        for item in items:
            counter[self.split_of_prompt[item.prompt_key]] += item.count
        return {name: counter.get(name, 0) for name in SPLITS}


def vocal_label(vocal: bool | None) -> str:
    return "unknown" if vocal is None else ("vocal" if vocal else "instrumental")


def assign_splits(
    items: Sequence[SplitItem],
    *,
    seed: int,
    test_target: int,
    validation_target: int,
    balance_test: bool,
    group_by_reference: bool,
) -> SplitPlan:
    """Assign every item a split; targets count comparisons (an item stands for ``item.count`` of them).

    A group is never split, so a split can end a little under its target when groups are
    large; the balanced test split reports what it could not fill in ``shortfall``.
    """
    groups = _groups(items, group_by_reference=group_by_reference)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    if balance_test:
        test_keys, shortfall = _draw_balanced(order, groups, test_target)
    else:
        test_keys = _draw_up_to(order, groups, test_target)
        shortfall = _plain_shortfall(test_target, sum(_size(groups[k]) for k in test_keys))
    remaining = [key for key in order if key not in test_keys]
    validation_keys = _draw_up_to(remaining, groups, validation_target)
    split_of_prompt: dict[str, str] = {}
    for key, members in groups.items():
        name = "test" if key in test_keys else "validation" if key in validation_keys else "train"
        for item in members:
            split_of_prompt[item.prompt_key] = name
    return SplitPlan(split_of_prompt, test_target, validation_target, shortfall)


def _size(members: list[SplitItem]) -> int:
    return sum(item.count for item in members)


def _cells(members: list[SplitItem]) -> Counter[tuple[str, str]]:
    cells: Counter[tuple[str, str]] = Counter()
    for item in members:
        cells[item.cell] += item.count
    return cells


def _groups(items: Iterable[SplitItem], *, group_by_reference: bool) -> dict[str, list[SplitItem]]:
    """Connected components over prompt keys (and reference clips), keyed by their smallest prompt key."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(left: str, right: str) -> None:
        a, b = find(left), find(right)
        if a != b:
            # The smaller key wins, so the root does not depend on the order items arrive in.
            parent[max(a, b)] = min(a, b)

    items = list(items)
    for item in items:
        find("p:" + item.prompt_key)
        if group_by_reference and item.reference_key:
            union("p:" + item.prompt_key, "r:" + item.reference_key)
    groups: dict[str, list[SplitItem]] = defaultdict(list)
    for item in items:
        groups[find("p:" + item.prompt_key)].append(item)
    return dict(groups)


def _draw_up_to(order: Sequence[str], groups: dict[str, list[SplitItem]], target: int) -> set[str]:
    """Whole groups in order, skipping any that would overshoot the target."""
    chosen: set[str] = set()
    taken = 0
    for key in order:
        if taken >= target:
            break
        size = _size(groups[key])
        if taken + size <= target:
            chosen.add(key)
            taken += size
    return chosen


def balanced_quotas(target: int) -> dict[tuple[str, str], int]:
    """Equal parts per modality, then equal parts instrumental/vocal; remainders go to the first keys."""
    quotas: dict[tuple[str, str], int] = {}
    for index, modality in enumerate(MODALITIES):
        per_modality = target // 4 + (1 if index < target % 4 else 0)
        for vocal_index, vocal in enumerate(VOCAL_KEYS):
            quotas[modality, vocal] = per_modality // 2 + (1 if vocal_index < per_modality % 2 else 0)
    return quotas


def _draw_balanced(
    order: Sequence[str], groups: dict[str, list[SplitItem]], target: int
) -> tuple[set[str], dict[str, Any]]:
    """Fill each (modality, vocal) cell to its quota; then let a modality's vocal halves make up for each other."""
    quotas = balanced_quotas(target)
    modality_quota = {m: sum(quotas[m, v] for v in VOCAL_KEYS) for m in MODALITIES}
    cell_taken: Counter[tuple[str, str]] = Counter()
    chosen: set[str] = set()
    # Pass 1: strict cells. Pass 2: per-modality totals only, where a vocal half fell short.
    for strict in (True, False):
        for key in order:
            if key in chosen:
                continue
            cells = _cells(groups[key])
            if strict and _fits_cells(cells, cell_taken, quotas):
                chosen.add(key)
                cell_taken.update(cells)
            elif not strict and _fits_modalities(cells, cell_taken, modality_quota):
                chosen.add(key)
                cell_taken.update(cells)
    return chosen, _balanced_shortfall(target, quotas, modality_quota, cell_taken)


def _fits_cells(cells: Counter[tuple[str, str]], taken: Counter[tuple[str, str]], quotas: dict) -> bool:
    return all(taken[cell] + n <= quotas.get(cell, 0) for cell, n in cells.items())


def _fits_modalities(cells: Counter[tuple[str, str]], taken: Counter[tuple[str, str]], quota: dict[str, int]) -> bool:
    per_modality: Counter[str] = Counter()
    for (modality, _), n in cells.items():
        per_modality[modality] += n
    return all(
        sum(v for (m, _), v in taken.items() if m == modality) + n <= quota.get(modality, 0)
        for modality, n in per_modality.items()
    )


def _plain_shortfall(target: int, selected: int) -> dict[str, Any]:
    if selected >= target:
        return {}
    return {
        "requested": target,
        "selected": selected,
        "messages": [f"test split: {target} comparisons requested, {selected} selected (whole prompt groups only)"],
    }


def _balanced_shortfall(
    target: int,
    quotas: dict[tuple[str, str], int],
    modality_quota: dict[str, int],
    taken: Counter[tuple[str, str]],
) -> dict[str, Any]:
    messages: list[str] = []
    by_modality: dict[str, dict[str, object]] = {}
    for modality in MODALITIES:
        selected = sum(n for (m, _), n in taken.items() if m == modality)
        cells = {
            vocal: {"requested": quotas.get((modality, vocal), 0), "selected": taken[modality, vocal]}
            for vocal in (*VOCAL_KEYS, "unknown")
            if quotas.get((modality, vocal)) or taken[modality, vocal]
        }
        by_modality[modality] = {"requested": modality_quota[modality], "selected": selected, "vocal": cells}
        if selected < modality_quota[modality]:
            messages.append(f"modality {modality}: {modality_quota[modality]} requested, {selected} available")
        for vocal in VOCAL_KEYS:
            if taken[modality, vocal] < quotas[modality, vocal]:
                messages.append(
                    f"modality {modality} {vocal}: {quotas[modality, vocal]} requested, {taken[modality, vocal]} "
                    "selected" + (" (made up from the other half)" if selected >= modality_quota[modality] else "")
                )
    selected_total = sum(taken.values())
    if not messages:
        return {}
    return {"requested": target, "selected": selected_total, "by_modality": by_modality, "messages": messages}
