"""The human-readable report: Markdown tables and one PNG (matplotlib, Agg backend).

`calibration.png`: accuracy against mean cost per query. First panel: the calibration mix, one
uniform curve per strategy family (oracle selection dashed: a ceiling), the exact allocation
frontier and the chosen point. Second panel (with a held-out part): the same on held-out items
with bootstrap intervals, the adaptive curves with each tier source. Then one panel per tier.
Plots are skipped, with a note in the report and on the console, when matplotlib is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.calibrate.analysis import ALL, Calibration, TierResult
from router.calibrate.grid import family, is_oracle
from router.calibrate.holdout import Holdout, check_dominates, uniform_on_calibration
from router.calibrate.outputs import rule_text

_COST_NAMES = {
    "usd": "USD per query",
    "tokens": "tokens per query",
    "generated": "generated tokens per query",
}


def _c(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    if value != value:  # NaN: not reached
        return "not reached"
    return f"{value:.6f}" if metric == "usd" else f"{value:.1f}"


def _ci(lo_hi: tuple[float | None, float | None], fmt: str = "{:.3f}") -> str:
    lo, hi = lo_hi
    low = "-" if lo is None else fmt.format(lo)
    return f"[{low}, {'not reached' if hi is None else fmt.format(hi)}]"


def tier_table(result: TierResult, metric: str) -> list[str]:
    on_frontier = {p.label for p in result.frontier}
    chosen = result.chosen.label if result.chosen else None
    lines = [
        "| configuration | runs | accuracy | tokens | generated | USD | latency p50 s | marks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in result.points:
        marks = [m for m, on in (("frontier", p.label in on_frontier),
                                 ("**chosen**", p.label == chosen),
                                 ("oracle", is_oracle(p.config))) if on]
        if p.anytime:
            marks.append(f"{p.anytime} cut by budget")
        lines.append(
            f"| `{p.label}` | {p.runs} | {p.accuracy:.3f} | {p.tokens:.1f} | {p.generated:.1f} "
            f"| {p.usd:.6f} | {p.latency_p50_s:.3f} | {', '.join(marks)} |"
        )
    return lines


def _calibration_sections(cal: Calibration) -> list[str]:
    m = cal.metric
    out = ["## Chosen allocation", "", f"Rule: {rule_text(cal)}.", "",
           "| tier | share | items | configuration | accuracy | cost |",
           "|---|---|---|---|---|---|"]
    for b in cal.bins:
        r = cal.tiers[b]
        p = r.chosen
        cells = [b, f"{cal.shares[b]:.3f}", str(r.items)]
        cells += ["-"] * 3 if p is None else [f"`{p.label}`", f"{p.accuracy:.3f}",
                                              _c(p.cost(m), m)]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "## Allocation frontier (calibration data)", "",
            f"Every assignment of one configuration per tier that no other beats on both average "
            f"cost and accuracy over the traffic mix ({len(cal.frontier)} points).", "",
            "| cost | accuracy | assignment |", "|---|---|---|"]
    picked = cal.pick.allocation if cal.pick else None
    for a in cal.frontier:
        assign = ", ".join(f"{b}: `{c.label}`" for b, c in cal.assignment(a).items())
        mark = " **(chosen)**" if a == picked else ""
        out.append(f"| {_c(a.cost, m)} | {a.accuracy:.3f} | {assign}{mark} |")
    out += ["", "## Uniform curves (calibration data)", "",
            "The same configuration for every tier, over the same traffic mix.", "",
            "| curve | configuration | cost | accuracy |", "|---|---|---|---|"]
    for fam, pts in uniform_on_calibration(cal).items():
        out += [f"| uniform {fam} | `{label}` | {_c(cost, m)} | {acc:.3f} |"
                for cost, acc, label in pts]
    bad = check_dominates(cal)
    out += ["", "Frontier at or above every serve-time uniform point at the same cost: "
            + ("yes" if not bad else "**NO** (" + ", ".join(bad) + ")"), ""]
    return out


def _holdout_sections(h: Holdout) -> list[str]:
    m = h.metric
    out = ["## Held-out evaluation", "",
           f"{h.items} held-out items; 95% percentile bootstrap intervals over items "
           f"({h.boots} resamples, the same for every arm).", "",
           "| curve | arm | accuracy | 95% CI | cost | 95% CI |", "|---|---|---|---|---|---|"]
    for cv in h.curves:
        tag = " (ceiling: oracle selection)" if cv.kind == "ceiling" else ""
        for a in cv.arms:
            out.append(f"| {cv.name}{tag} | {a.name} | {a.accuracy:.3f} | {_ci(a.accuracy_ci)} "
                       f"| {_c(a.cost, m)} | [{_c(a.cost_ci[0], m)}, {_c(a.cost_ci[1], m)}] |")
    out += ["", "### Compute ratio at matched accuracy", "",
            "Average cost the best serve-time uniform curve needs to reach the adaptive "
            "policy's held-out accuracy, over what the adaptive policy spends (above 1: adaptive "
            "is cheaper). Rows \"vs same N for everyone\" compare with uniform curves without "
            "the posterior strategies (early stop, escalation), so they count those strategies' "
            "saving as well as the tier's; the other rows compare with every uniform curve "
            "(posterior strategies on every query included): the tier's saving alone.", "",
            "| adaptive arm | accuracy | cost | uniform cost to match | ratio | 95% CI |",
            "|---|---|---|---|---|---|"]
    for r in h.ratios:
        value = "not reached" if r.value is None else f"{r.value:.2f}x"
        out.append(f"| {r.name} | {r.accuracy:.3f} | {_c(r.cost, m)} | "
                   f"{_c(r.uniform_cost, m)} | {value} | {_ci(r.ci, '{:.2f}')} |")
    if h.attribution and h.attribution_accuracy is not None:
        base = h.attribution[0][1]
        out += ["", "### Where the saving comes from: prior (tier) and posterior (evidence)", "",
                f"Cost each kind of allocation needs on held-out items to reach accuracy "
                f"{h.attribution_accuracy:.3f} (the adaptive policy's).", "",
                "| allocation | cost | ratio to uniform without evidence |", "|---|---|---|"]
        for name, cost in h.attribution:
            ratio = "-" if cost is None or base is None or cost <= 0 else f"{base / cost:.2f}x"
            out.append(f"| {name} | {_c(cost, m) if cost is not None else 'not reached'} "
                       f"| {ratio} |")
    out += _plain_words(h)
    out += [f"- note: {n}" for n in h.notes]
    return out


def _plain_words(h: Holdout) -> list[str]:
    """Say it plainly when extra serve-time compute does not buy accuracy."""
    arms = [(a, cv) for cv in h.curves if cv.kind == "uniform" for a in cv.arms]
    if not arms:
        return []
    cheapest = min(arms, key=lambda x: x[0].cost)[0]
    best = max(arms, key=lambda x: (x[0].accuracy, -x[0].cost))[0]
    gain = best.accuracy - cheapest.accuracy
    lines = ["", "### In plain words", ""]
    for name, (under, total) in h.below.items():
        lines.append(
            f"- {name}: {under} of {total} frontier points fall below the best uniform "
            "configuration of at most the same cost by more than their 95% interval.")
    lines.append("")
    if gain <= 0 or best.accuracy_ci[0] <= cheapest.accuracy:
        lines.append(
            f"With selection the router can do at serve time, extra compute does not measurably "
            f"buy accuracy here: the cheapest uniform configuration (`{cheapest.name}`) scores "
            f"{cheapest.accuracy:.3f} and the best (`{best.name}`) {best.accuracy:.3f}, inside "
            "its interval. The compute-optimal policy is then the cheap one, and that is a "
            "correct outcome.")
    else:
        lines.append(
            f"Extra serve-time compute buys accuracy: `{best.name}` {best.accuracy:.3f} against "
            f"`{cheapest.name}` {cheapest.accuracy:.3f}.")
    return lines


def markdown(
    cal: Calibration,
    *,
    title: str,
    settings: Sequence[tuple[str, str]],
    plot: str | None,
    plot_note: str | None = None,
    holdout: Holdout | None = None,
    curves: Sequence[str] = (),
) -> str:
    cost = _COST_NAMES[cal.metric]
    out = [f"# {title}", ""]
    out += [f"- {k}: {v}" for k, v in settings]
    out += [f"- cost metric: {cost}",
            "- traffic shares: " + ", ".join(f"{b} {s:.3f}" for b, s in cal.shares.items())]
    out += [f"- note: {n}" for n in cal.notes]
    if curves:
        out += ["", "Curves in this report: " + "; ".join(curves) + "."]
    out.append("")
    if plot:
        out += [f"![accuracy against cost]({plot})", ""]
    elif plot_note:
        out += [f"_{plot_note}_", ""]
    out += _calibration_sections(cal)
    if holdout is not None:
        out += _holdout_sections(holdout)
        out.append("")
    counts: dict[str, int] = {}
    for t in cal.tier_of.values():
        counts[t.value] = counts.get(t.value, 0) + 1
    out += ["Items per tier: " + ", ".join(f"{k} {v}" for k, v in counts.items()), ""]
    for tier, r in cal.tiers.items():
        out += [f"## {'All items' if tier == ALL else 'Tier ' + tier}", ""]
        out += tier_table(r, cal.metric)
        out.append("")
    return "\n".join(out)


def curve_names(cal: Calibration, holdout: Holdout | None) -> list[str]:
    names = [f"uniform {f}" for f in uniform_on_calibration(cal)]
    names.append("allocation frontier (calibration)")
    if holdout is not None:
        names += [f"{cv.name} (held-out)" for cv in holdout.curves]
    return names


def plot(cal: Calibration, path: Path, title: str = "", holdout: Holdout | None = None) -> None:
    """Raises ImportError when matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiers = [t for t in cal.tiers if t != ALL]
    panels = 1 + (holdout is not None) + len(tiers)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), squeeze=False)
    row = list(axes[0])
    colours: dict[str, str] = {}

    def colour(name: str) -> str:
        return colours.setdefault(name, f"C{len(colours) % 10}")

    ax = row.pop(0)
    for fam, pts in uniform_on_calibration(cal).items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o--" if "oracle" in fam else "o-",
                color=colour(fam), label=f"uniform {fam}", ms=4)
    ax.plot([a.cost for a in cal.frontier], [a.accuracy for a in cal.frontier], "k-", lw=1.4,
            label="allocation frontier")
    if cal.pick is not None:
        ax.plot([cal.pick.allocation.cost], [cal.pick.allocation.accuracy], "*", ms=15,
                mfc="none", mec="red", mew=1.6, label=f"chosen ({cal.pick.rule})")
    _axes(ax, "calibration mix", cal.metric)
    if holdout is not None:
        ax = row.pop(0)
        styles = {"uniform": "o-", "ceiling": "o--", "adaptive": "s-"}
        for cv in holdout.curves:
            name = cv.name.removeprefix("uniform ")
            xs = [a.cost for a in cv.arms]
            ys = [a.accuracy for a in cv.arms]
            err = [[y - a.accuracy_ci[0] for y, a in zip(ys, cv.arms, strict=True)],
                   [a.accuracy_ci[1] - y for y, a in zip(ys, cv.arms, strict=True)]]
            ax.errorbar(xs, ys, yerr=err, fmt=styles[cv.kind], ms=4, capsize=2, lw=1,
                        color=colour(name if cv.kind != "adaptive" else cv.name),
                        label=cv.name if cv.kind != "uniform" else None)
        _axes(ax, f"held-out ({holdout.items} items, 95% CI)", cal.metric)
    for ax, tier in zip(row, tiers, strict=True):
        r = cal.tiers[tier]
        for fam in dict.fromkeys(family(p.config) for p in r.points):
            ps = sorted((p for p in r.points if family(p.config) == fam),
                        key=lambda p: p.cost(cal.metric))
            ax.plot([p.cost(cal.metric) for p in ps], [p.accuracy for p in ps],
                    "o--" if "oracle" in fam else "o-", color=colour(fam), ms=4)
        if r.chosen is not None:
            ax.plot([r.chosen.cost(cal.metric)], [r.chosen.accuracy], "*", ms=15, mfc="none",
                    mec="red", mew=1.6)
        _axes(ax, f"{tier} ({r.items} items, share {cal.shares.get(tier, 0):.2f})", cal.metric)
    axes[0][0].set_ylabel("accuracy")
    handles: dict[str, Any] = {}
    for a in axes[0]:
        for h, label in zip(*a.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center",
               ncol=min(len(handles), 4), fontsize=8)
    if title:
        fig.suptitle(title)
    rows = (len(handles) + 3) // 4
    fig.tight_layout(rect=(0, min(0.45, 0.06 * rows + 0.02), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _axes(ax: Any, title: str, metric: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(_COST_NAMES[metric])
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    if metric != "usd":
        ax.set_xscale("symlog", linthresh=1.0)
