from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.agreement.apis import LeaderboardParamsSerializer, LeaderboardSerializer
from annotate.agreement.leaderboard import system_leaderboard
from annotate.agreement.management.commands._campaign import campaign_from_arg
from annotate.agreement.management.commands.agreement import _num, _table


def _position(pos: dict[str, Any] | None) -> list[str]:
    if pos is None:
        return ["-", "-"]
    return [
        f"{pos['rank']} ({pos['rank_best']}-{pos['rank_worst']})",
        f"{pos['strength']:+.2f} [{pos['lower']:+.2f}, {pos['upper']:+.2f}]",
    ]


def format_leaderboard(board: dict[str, Any]) -> str:
    scope = "all campaigns" if board["campaigns"] is None else "campaign " + ", ".join(map(str, board["campaigns"]))
    model = board["model_version"]
    out = [
        f"Leaderboard of {scope}: Bradley-Terry, ties half a win, {board['confidence']:.0%} bootstrap intervals "
        f"({board['bootstrap_samples']} resamples), ranked from {board['min_votes']} votes; "
        f"reward model: {model['name'] + ' (v' + str(model['id']) + ')' if model else 'none active'}",
    ]
    for question, q in board["questions"].items():
        out += ["", f"{question}: {q['votes']} votes ({q['ranked_votes']} between ranked systems)"]
        rows = [
            [s["system"], s["votes"], f"{s['wins']:.1f}", s["ties"], *_position(s["human"]), *_position(s["model"])]
            for s in q["systems"]
        ]
        out.append(
            _table(
                ["system", "votes", "wins", "ties", "rank (range)", "strength [CI]", "model rank", "model strength"],
                rows,
            )
        )
        m = q["model"]
        if m:
            shifts = "; ".join(f"{d['system']} #{d['human_rank']} vs #{d['model_rank']}" for d in m["disagreements"])
            out.append(
                f"model vs humans on {m['comparisons_scored']} votes: Kendall tau {_num(m['kendall_tau'], 2)} "
                f"[{_num(m['kendall_tau_lower'], 2)}, {_num(m['kendall_tau_upper'], 2)}]"
                + (f"; largest disagreements: {shifts}" if shifts else "")
            )
    return "\n".join(out)


class Command(BaseCommand):
    help = "Print the generator leaderboard (Bradley-Terry with bootstrap intervals) of a campaign or of all."

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("campaign", nargs="?", help="Campaign name or id.")
        scope.add_argument("--all", action="store_true", help="Pool every campaign (systems matched by name).")
        parser.add_argument("--modality", default="", help="Keep these modalities, e.g. T or TL (T/L/A/C).")
        parser.add_argument("--vocal", default="", choices=["", "vocal", "instrumental"])
        parser.add_argument("--since", default=None, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--until", default=None, help="YYYY-MM-DD, inclusive.")
        parser.add_argument("--min-votes", type=int, default=None, help="Votes a system needs to be ranked.")
        parser.add_argument("--bootstrap-samples", type=int, default=None)
        parser.add_argument("--json", action="store_true", help="Print the API's JSON instead of tables.")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = None if options["all"] else (campaign_from_arg(options["campaign"]).pk,)
        keys = ("modality", "vocal", "since", "until", "min_votes", "bootstrap_samples")
        params = LeaderboardParamsSerializer(data={key: options[key] for key in keys if options[key]})
        if not params.is_valid():
            raise CommandError(f"Bad parameter: {json.dumps(params.errors)}")
        board = system_leaderboard(query=params.to_query(ids))
        if options["json"]:
            self.stdout.write(json.dumps(LeaderboardSerializer(board).data, indent=2))
        else:
            self.stdout.write(format_leaderboard(board))
