"""The human-readable report: Markdown tables and PNG plots (matplotlib, Agg backend).

`calibration.png`: one panel per tier (and one over all items), accuracy against mean cost per
query, one line per strategy (and verifier) through its budgets, the frontier dashed, the
target-mode choice as a star and the cap-mode choice as a square. Plots are skipped, with a
note in the report, when matplotlib is not installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from router.calibrate.analysis import ALL, Calibration, Point, TierResult

_COST_NAMES = {
    "usd": "USD per query",
    "tokens": "tokens per query",
    "generated": "generated tokens per query",
}


def _fmt_cost(value: float, metric: str) -> str:
    return f"{value:.6f}" if metric == "usd" else f"{value:.1f}"


def tier_table(result: TierResult, metric: str) -> list[str]:
    on_frontier = {p.label for p in result.frontier}
    target = result.target.point.label if result.target else None
    cap = result.cap.point.label if result.cap else None
    lines = [
        "| configuration | runs | accuracy | tokens | generated | USD | latency p50 s | marks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in result.points:
        marks = [m for m, on in (("frontier", p.label in on_frontier),
                                 ("**target**", p.label == target),
                                 ("**cap**", p.label == cap)) if on]
        if p.anytime:
            marks.append(f"{p.anytime} cut by budget")
        lines.append(
            f"| `{p.label}` | {p.runs} | {p.accuracy:.3f} | {p.tokens:.1f} | {p.generated:.1f} "
            f"| {p.usd:.6f} | {p.latency_p50_s:.3f} | {', '.join(marks)} |"
        )
    return lines


def markdown(
    cal: Calibration,
    *,
    title: str,
    settings: Sequence[tuple[str, str]],
    plot: str | None,
    plot_note: str | None = None,
) -> str:
    cost = _COST_NAMES[cal.metric]
    out = [f"# {title}", ""]
    out += [f"- {k}: {v}" for k, v in settings]
    out += [f"- cost metric: {cost}", f"- target mode: cheapest within {cal.target:g} of the best"]
    if cal.cap is not None:
        out.append(f"- cap mode: most accurate at <= {_fmt_cost(cal.cap, cal.metric)} {cost}")
    out += [f"- note: {n}" for n in cal.notes]
    out += ["", "## Chosen operating points", "",
            "| tier | items | target mode | accuracy | cost | cap mode | accuracy | cost |",
            "|---|---|---|---|---|---|---|---|"]
    for tier, r in cal.tiers.items():
        cells = [tier, str(r.items)]
        for choice in (r.target, r.cap):
            if choice is None:
                cells += ["-", "-", "-"]
                continue
            p = choice.point
            flag = "" if choice.within else " (over cap)"
            cells += [f"`{p.label}`{flag}", f"{p.accuracy:.3f}",
                      _fmt_cost(p.cost(cal.metric), cal.metric)]
        out.append("| " + " | ".join(cells) + " |")
    counts: dict[str, int] = {}
    for t in cal.tier_of.values():
        counts[t.value] = counts.get(t.value, 0) + 1
    out += ["", "Items per tier: " + ", ".join(f"{k} {v}" for k, v in counts.items()), ""]
    if plot:
        out += [f"![accuracy against cost]({plot})", ""]
    elif plot_note:
        out += [f"_{plot_note}_", ""]
    for tier, r in cal.tiers.items():
        out += [f"## {'All items' if tier == ALL else 'Tier ' + tier}", ""]
        out += tier_table(r, cal.metric)
        out.append("")
    return "\n".join(out)


def _series(points: Sequence[Point]) -> dict[str, list[Point]]:
    series: dict[str, list[Point]] = {}
    for p in points:
        name = p.config.strategy + (f"+{p.config.verifier}" if p.config.verifier else "")
        series.setdefault(name, []).append(p)
    return series


def plot(cal: Calibration, path: Path, title: str = "") -> None:
    """Raises ImportError when matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiers = list(cal.tiers)
    fig, axes = plt.subplots(1, len(tiers), figsize=(4.2 * len(tiers), 3.8), squeeze=False)
    colours: dict[str, str] = {}
    for ax, tier in zip(axes[0], tiers, strict=True):
        r = cal.tiers[tier]
        for name, pts in _series(r.points).items():
            pts = sorted(pts, key=lambda p: p.cost(cal.metric))
            colour = colours.setdefault(name, f"C{len(colours) % 10}")
            xs = [p.cost(cal.metric) for p in pts]
            ax.plot(xs, [p.accuracy for p in pts], marker="o", color=colour, label=name,
                    linestyle="-" if len(pts) > 1 else "none")
            for p, x in zip(pts, xs, strict=True):
                ax.annotate(str(p.config.samples_hint), (x, p.accuracy), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        fx = [p.cost(cal.metric) for p in r.frontier]
        ax.plot(fx, [p.accuracy for p in r.frontier], "k--", lw=1, label="frontier")
        for choice, marker, label in ((r.target, "*", "target choice"),
                                      (r.cap, "s", "cap choice")):
            if choice is not None:
                ax.plot([choice.point.cost(cal.metric)], [choice.point.accuracy], marker,
                        ms=13, mfc="none", mec="red", mew=1.6, label=label)
        ax.set_title(f"{tier} ({r.items} items)")
        ax.set_xlabel(_COST_NAMES[cal.metric])
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if cal.metric != "usd" and min((p.cost(cal.metric) for p in r.points), default=0) > 0:
            ax.set_xscale("log")
    axes[0][0].set_ylabel("accuracy")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}
    fig.legend(list(handles.values()), list(handles), loc="lower center",
               ncol=min(len(handles), 6), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
