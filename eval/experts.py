"""The expert of every task against the field's published return: ``gato experts``.

A task may have several measured experts in `eval/references.json`: a search expert
(``search_expert``, `eval.measure_search`), a trained RL expert (``sb3_expert``, or ``expert`` of
kind ``sb3-*`` where it is the anchor), a RAM-scripted Atari expert (``ram_expert``), or the
scripted expert that ships with the env (BabyAI, Meta-World: ``expert`` of kind ``scripted``).
The best of them (highest mean return) is the task's expert. Where the field has a published
return, the expert is scored against it, with the target of its domain:

- **DMC**: the return as a fraction of SAC at 1M env steps on state observations (``published``
  entry); target 0.8.
- **Atari**: human-normalized, ``(R - random) / (human - random)``; target 0.5.
- **Procgen**: normalized with Cobbe et al.'s constants, ``(R - R_min) / (R_max - R_min)`` (easy
  distribution); target 0.5.

    gato experts                       # every domain, summary per domain
    gato experts --domain dmc --table  # the markdown table of one domain
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from eval.references import REFERENCES_PATH

# Sub-entries that hold a measured expert (the `expert` entry only when it is measured, not an anchor).
MEASURED = ("search_expert", "sb3_expert", "ram_expert")
MEASURED_ANCHOR_KINDS = ("scripted", "sb3")
TARGETS = {"dmc": 0.8, "atari": 0.5, "procgen": 0.5}
TARGET_TEXT = {"dmc": "of SAC at 1M steps", "atari": "human-normalized", "procgen": "R_max-normalized"}


@dataclass(frozen=True)
class ExpertRow:
    """The best measured expert of one task and its score against the published return.

    Attributes:
        task_id: registry id.
        source: the reference sub-entry it comes from (``search_expert``, ``sb3_expert``, ...), or
            ``""`` when the task has no measured expert.
        kind: the expert's kind (``search``, ``sb3-sac``, ``scripted-ram``, ``scripted``).
        policy: the policy name with its budget, where recorded.
        ret: mean return; ``None`` without a measured expert.
        std: standard deviation of the returns.
        episodes: episodes it was measured on.
        seconds_per_step: planning cost of a search expert, where recorded.
        published: the published return it is scored against, or ``None``.
        score: the domain's score (see the module doc), or ``None``.
        target: the domain's target score, or ``None``.
    """

    task_id: str
    source: str
    kind: str
    policy: str
    ret: float | None
    std: float | None
    episodes: int | None
    seconds_per_step: float | None
    published: float | None
    score: float | None
    target: float | None

    @property
    def meets_target(self) -> bool:
        return self.score is not None and self.target is not None and self.score >= self.target


def _measured(entry: dict) -> list[tuple[str, dict]]:
    found = [(k, entry[k]) for k in MEASURED if k in entry]
    anchor = entry.get("expert", {})
    if str(anchor.get("kind", "")).startswith(MEASURED_ANCHOR_KINDS):
        found.append(("expert", anchor))
    return found


def _score(domain: str, ret: float, entry: dict) -> tuple[float | None, float | None]:
    """(published return, score) of a return ``ret`` in ``domain``; (None, None) if nothing is published."""
    if domain == "dmc":
        pub = entry.get("published", {}).get("return")
        return (pub, ret / pub) if pub else (None, None)
    if domain in ("atari", "procgen"):
        anchor, random = entry.get("expert", {}), entry.get("random", {})
        if anchor.get("kind") in ("human", "r_max") and "return" in random:
            lo, hi = float(random["return"]), float(anchor["return"])
            return hi, (ret - lo) / (hi - lo)
    return None, None


def expert_rows(domain: str | None = None, path: str | None = None) -> list[ExpertRow]:
    """One `ExpertRow` per task of the reference file (of ``domain`` if given), pixel tasks excluded."""
    with open(path or REFERENCES_PATH) as f:
        tasks = json.load(f)["tasks"]
    rows = []
    for task_id, entry in tasks.items():
        dom = task_id.split("-", 1)[0]
        if (domain and dom != domain) or task_id.startswith("dmc-pixels-"):
            continue
        measured = _measured(entry)
        if not measured:
            pub, _ = _score(dom, 0.0, entry)
            rows.append(ExpertRow(task_id, "", "", "", None, None, None, None, pub, None, TARGETS.get(dom)))
            continue
        source, best = max(measured, key=lambda kv: float(kv[1]["return"]))
        ret = float(best["return"])
        pub, score = _score(dom, ret, entry)
        rows.append(ExpertRow(
            task_id, source, str(best.get("kind", "")), str(best.get("policy", "")), ret, best.get("std"),
            best.get("episodes"), best.get("seconds_per_step"), pub, score, TARGETS.get(dom),
        ))
    return rows


def summary(rows: list[ExpertRow]) -> list[str]:
    """One line per domain: tasks, tasks with an expert, with a published return, meeting the target."""
    lines = []
    for dom in sorted({r.task_id.split("-", 1)[0] for r in rows}):
        dr = [r for r in rows if r.task_id.startswith(dom + "-")]
        with_expert = sum(r.ret is not None for r in dr)
        line = f"{dom}: {len(dr)} tasks, {with_expert} with a measured expert"
        if dom in TARGETS:
            published = sum(r.published is not None for r in dr)
            met = sum(r.meets_target for r in dr)
            line += (f", {published} with a published return, {met} at >= {TARGETS[dom]:g} "
                     f"{TARGET_TEXT[dom]}")
        lines.append(line)
    return lines


def markdown_table(rows: list[ExpertRow]) -> str:
    """The rows as a markdown table (return +- std over episodes, published return, score)."""
    out = ["| task | expert | return | episodes | ms/step | published | score | target met |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for r in rows:
        who = f"{r.kind} `{r.policy}`" if r.policy else (r.kind or "none")
        ret = "-" if r.ret is None else f"{r.ret:.1f}" + (f" +- {r.std:.1f}" if r.std is not None else "")
        ms = "-" if r.seconds_per_step is None else f"{1000 * r.seconds_per_step:.1f}"
        pub = "-" if r.published is None else f"{r.published:g}"
        score = "-" if r.score is None else f"{r.score:.2f}"
        met = "-" if r.score is None else ("yes" if r.meets_target else "no")
        out.append(f"| {r.task_id} | {who} | {ret} | {r.episodes or '-'} | {ms} | {pub} | {score} | {met} |")
    return "\n".join(out)


@dataclass
class ExpertsConfig:
    """`gato experts`: every task's best measured expert against the field's published return."""

    domain: Literal["atari", "babyai", "dmc", "metaworld", "procgen"] | None = None
    """Only this domain (default: all)."""
    table: bool = False
    """Also print the markdown table of every task (expert, return, episodes, cost, published, score)."""
    references: str | None = None
    """Reference file (default eval/references.json)."""


def main(argv: list[str] | None = None) -> int:
    from envs.commandline import check_file, parse

    cfg = parse(ExpertsConfig, argv, "gato experts")
    if cfg.references:
        check_file(cfg.references, "--references")
    rows = expert_rows(cfg.domain, cfg.references)
    if cfg.table:
        print(markdown_table(rows))
        print()
    print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
