from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.agreement.apis import FiltersSerializer
from annotate.agreement.management.commands._campaign import campaign_from_arg
from annotate.agreement.selectors import campaign_agreement


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [line.format(*headers), line.format(*("-" * w for w in widths))] + [line.format(*map(str, row)) for row in rows]
    )


def _alpha(block: dict[str, Any]) -> str:
    if block["status"] != "ok":
        return "not enough overlapping votes" if block["status"] == "not_enough_overlap" else "undefined (no variation)"
    ci = f" [{_num(block['ci95_low'])}, {_num(block['ci95_high'])}]" if block["ci95_low"] is not None else ""
    return _num(block["value"]) + ci


def format_report(report: dict[str, Any]) -> str:
    s = report["summary"]
    al, mu = s["alignment"], s["musicality"]
    fresh = report["freshness"]
    out = [
        f"Campaign {report['campaign']['id']}: {report['campaign']['name']}  "
        f"({s['vote_count']} votes, {s['comparison_count']} comparisons, {s['annotator_count']} annotators; "
        f"{fresh['source']} at {fresh['computed_at']})",
        "",
    ]
    out.append(
        _table(
            ["", "alignment", "musicality"],
            [
                ["agreement rate", _pct(al["agreement_rate"]), _pct(mu["agreement_rate"])],
                ["Krippendorff alpha [95% CI]", _alpha(al["alpha"]), _alpha(mu["alpha"])],
                ["comparisons with 2+ votes", al["comparisons_with_2plus_votes"], mu["comparisons_with_2plus_votes"]],
                ["votes on them", al["votes_on_those_comparisons"], mu["votes_on_those_comparisons"]],
                ["vote pairs", al["vote_pairs"], mu["vote_pairs"]],
                [
                    "agreeing / disagreeing",
                    f"{al['agreeing_pairs']} / {al['disagreeing_pairs']}",
                    f"{mu['agreeing_pairs']} / {mu['disagreeing_pairs']}",
                ],
            ],
        )
    )
    cq = report["cross_question"]
    out += [
        "",
        f"Cross-question consistency: {_pct(cq['consistency_rate'])} ({cq['same_choice']}/{cq['votes']}); "
        f"mean confidence al/mu when same {_num(cq['when_same']['alignment_mean_confidence'], 2)}/"
        f"{_num(cq['when_same']['musicality_mean_confidence'], 2)}, when different "
        f"{_num(cq['when_different']['alignment_mean_confidence'], 2)}/"
        f"{_num(cq['when_different']['musicality_mean_confidence'], 2)}",
        "",
    ]
    rows = []
    for level in range(5):
        row = [str(level + 1)]
        for question in ("alignment", "musicality"):
            block = report["confidence"][question]
            stat = block["agreement_by_confidence"][level]
            row += [block["distribution"][str(level + 1)], _pct(stat["agreement_rate"])]
        rows.append(row)
    out.append(_table(["confidence", "al votes", "al agreement", "mu votes", "mu agreement"], rows))
    rows = []
    for question in ("alignment", "musicality"):
        split = report["confidence"][question]["split_by_mean_confidence"]
        for b in split["bins"]:
            rows.append([question, b["description"], b["comparisons"], _pct(b["split_rate"])])
        rows.append([question, "Fisher low>high split p", "", _num(split["low_vs_high_split_test"]["p_value"], 4)])
    out += ["", _table(["question", "mean confidence", "comparisons", "split rate"], rows), ""]
    rows = [
        [
            a["username"],
            a["votes"],
            _num(a["median_time_on_task_s"], 1),
            _pct(a["median_listened_fraction"]),
            _pct(a["loo_agreement"]),
            f"{_pct(a['gold_accuracy'])} ({a['gold_answers']})",
            _pct(a["left_fraction"]),
            _num(a["position_bias_p_holm"], 4),
            ",".join(a["flags"]),
        ]
        for a in report["annotators"]
    ]
    out.append(
        _table(
            ["annotator", "votes", "median s", "listened", "LOO agree", "gold (n)", "left", "p(Holm)", "flags"], rows
        )
    )
    rows = [
        [
            f"#{d['comparison_id']}",
            d["prompt_id"],
            d["modality"],
            d["votes"],
            f"{d['alignment_a']}:{d['alignment_b']}",
            f"{d['musicality_a']}:{d['musicality_b']}",
            d.get("url", ""),
        ]
        for d in report["disputed"][:10]
    ]
    if rows:
        out += [
            "",
            "Most disputed comparisons:",
            _table(["comparison", "prompt", "mod", "votes", "al A:B", "mu A:B", "resolve at"], rows),
        ]
    return "\n".join(out)


class Command(BaseCommand):
    help = "Print agreement and quality statistics of a campaign (name or id) as tables, or --json."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", help="Campaign name or id.")
        parser.add_argument("--modality", default="", help="Keep these modalities, e.g. T or TL (T/L/A/C).")
        parser.add_argument("--vocal", default="", choices=["", "vocal", "instrumental"])
        parser.add_argument("--since", default=None, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--until", default=None, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--json", action="store_true", help="Print the API's JSON instead of tables.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = campaign_from_arg(options["campaign"])
        data = {key: options[key] for key in ("modality", "vocal", "since", "until") if options[key]}
        filters = FiltersSerializer(data=data)
        if not filters.is_valid():
            raise CommandError(f"Bad filter: {json.dumps(filters.errors)}")
        report = campaign_agreement(campaign=campaign, filters=filters.to_filters())
        self.stdout.write(json.dumps(report, indent=2) if options["json"] else format_report(report))
