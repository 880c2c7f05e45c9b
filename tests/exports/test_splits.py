"""The split assignment on its own: pure Python, no database."""

from __future__ import annotations

from collections import Counter

from annotate.exports.splits import SplitItem, assign_splits, balanced_quotas


def items(cells: dict[tuple[str, bool | None], int], *, per_prompt: int = 1) -> list[SplitItem]:
    result: list[SplitItem] = []
    for (modality, vocal), n in cells.items():
        for i in range(n):
            prompt = f"{modality}-{vocal}-{i // per_prompt}"
            result.append(SplitItem(prompt, "", modality, vocal))
    return result


def test_it_divides_the_quota_equally_across_modality_then_vocal() -> None:
    assert balanced_quotas(500) == {
        (m, v): 62 + (v == "instrumental") for m in "TLAC" for v in ("instrumental", "vocal")
    }
    assert sum(balanced_quotas(10).values()) == 10


def test_it_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    data = items({(m, v): 20 for m in "TLAC" for v in (False, True)})

    def split_of(items: list[SplitItem], seed: int) -> dict[str, str]:
        plan = assign_splits(
            items, seed=seed, test_target=40, validation_target=16, balance_test=True, group_by_reference=False
        )
        return plan.split_of_prompt

    first = split_of(data, 1)
    assert split_of(list(reversed(data)), 1) == first
    assert split_of(data, 2) != first


def test_it_keeps_every_prompt_in_one_split() -> None:
    data = items({("T", False): 30, ("L", True): 30}, per_prompt=3)
    plan = assign_splits(
        data, seed=0, test_target=12, validation_target=12, balance_test=False, group_by_reference=False
    )
    splits_per_prompt: dict[str, set[str]] = {}
    for item in data:
        splits_per_prompt.setdefault(item.prompt_key, set()).add(plan.split_of_prompt[item.prompt_key])
    assert all(len(s) == 1 for s in splits_per_prompt.values())
    assert plan.counts(data) == {"train": 36, "validation": 12, "test": 12}


def test_it_balances_the_test_split_exactly_when_data_allows() -> None:
    data = items({(m, v): 10 for m in "TLAC" for v in (False, True)})
    plan = assign_splits(data, seed=5, test_target=24, validation_target=0, balance_test=True, group_by_reference=False)
    cells = Counter(item.cell for item in data if plan.split_of_prompt[item.prompt_key] == "test")
    assert cells == {(m, v): 3 for m in "TLAC" for v in ("instrumental", "vocal")}
    assert plan.shortfall == {}


def test_it_makes_up_a_missing_vocal_half_within_the_modality_and_reports_it() -> None:
    data = items(
        {
            ("T", False): 10,
            ("T", True): 1,
            ("L", False): 5,
            ("L", True): 5,
            ("A", False): 5,
            ("A", True): 5,
            ("C", False): 5,
            ("C", True): 5,
        }
    )
    plan = assign_splits(data, seed=0, test_target=16, validation_target=0, balance_test=True, group_by_reference=False)
    tests = [item for item in data if plan.split_of_prompt[item.prompt_key] == "test"]
    assert Counter(item.modality for item in tests) == {m: 4 for m in "TLAC"}
    assert Counter(item.cell for item in tests)["T", "vocal"] == 1
    assert "modality T vocal: 2 requested, 1 selected (made up from the other half)" in plan.shortfall["messages"]


def test_it_reports_a_modality_that_cannot_be_filled() -> None:
    data = items({("T", False): 10, ("T", True): 10, ("L", False): 10, ("L", True): 10})
    plan = assign_splits(data, seed=0, test_target=20, validation_target=0, balance_test=True, group_by_reference=False)
    assert plan.counts(data)["test"] == 10
    assert plan.shortfall["selected"] == 10 and plan.shortfall["requested"] == 20
    assert "modality A: 5 requested, 0 available" in plan.shortfall["messages"]


def test_it_counts_unknown_vocal_items_only_toward_their_modality() -> None:
    data = items({("T", None): 8})
    plan = assign_splits(data, seed=0, test_target=4, validation_target=0, balance_test=True, group_by_reference=False)
    assert plan.counts(data)["test"] == 1  # T's quota is 1 of 4; other modalities are empty
    assert plan.shortfall["by_modality"]["T"]["vocal"]["unknown"] == {"requested": 0, "selected": 1}


def test_it_groups_prompts_sharing_a_reference_clip_when_asked() -> None:
    data = [SplitItem(f"p{i}", f"ref{i % 3}", "A", False) for i in range(1, 13)]
    for grouped in (True, False):
        plan = assign_splits(
            data, seed=3, test_target=4, validation_target=4, balance_test=False, group_by_reference=grouped
        )
        by_reference: dict[str, set[str]] = {}
        for item in data:
            by_reference.setdefault(item.reference_key, set()).add(plan.split_of_prompt[item.prompt_key])
        together = all(len(s) == 1 for s in by_reference.values())
        assert together is grouped


def test_it_splits_compact_rows_exactly_as_one_item_per_comparison() -> None:
    data = items({(m, v): 12 for m in "TLAC" for v in (False, True, None)}, per_prompt=3)
    rows: Counter[tuple[str, str, str, bool | None]] = Counter(
        (item.prompt_key, item.reference_key, item.modality, item.vocal) for item in data
    )
    compact = [SplitItem(*key, count=n) for key, n in sorted(rows.items(), key=str)]
    assert len(compact) < len(data)
    for balance in (True, False):
        options = dict(seed=4, test_target=30, validation_target=20, balance_test=balance, group_by_reference=False)
        one_each, grouped = assign_splits(data, **options), assign_splits(compact, **options)  # type: ignore[arg-type]
        assert grouped.split_of_prompt == one_each.split_of_prompt
        assert grouped.counts(compact) == one_each.counts(data)
        assert grouped.shortfall == one_each.shortfall
