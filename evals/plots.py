"""`routegraph eval --plot FILE.png`: one figure a person reads at a glance.

Left: the confusion summary. With few labels (at most `HEATMAP_MAX_LABELS`, out_of_scope
included) a confusion heatmap of true against predicted labels (row-normalised, counts written
in); with more, the most-confused pairs as bars. Right: the reliability diagram, confidence
against accuracy per bin with the diagonal of perfect calibration and the ECE in the title.

Drawn with matplotlib's Agg backend (offline, no display), from an eval result alone (the dict
`run_eval` returns, with `details=True` for the heatmap), so notebook 03 draws the same picture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.analysis import NONE

HEATMAP_MAX_LABELS = 16


def confusion_matrix(
    queries: Sequence[Mapping[str, Any]], multi_label: bool
) -> tuple[list[str], list[list[int]]]:
    """Labels (out_of_scope last) and counts[true][predicted] from per-query details. Multi-label
    rows add one count per (true label, predicted label) pair, a missing side as out_of_scope."""
    labels = [*sorted({x for q in queries for x in (*q["truth"], *q["predicted"])} - {NONE}), NONE]
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for q in queries:
        truth = list(q["truth"]) or [NONE]
        predicted = list(q["predicted"]) or [NONE]
        if not multi_label:
            predicted = predicted[:1]
        for t in truth:
            for p in predicted:
                counts[index[t]][index[p]] += 1
    return labels, counts


def plot_eval(result: Mapping[str, Any], path: str | Path | None = None) -> Any:
    """Draw the figure; save it to `path` when given. Returns the matplotlib Figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1.25, 1]})
    title = Path(str(result.get("data", "eval"))).name
    metrics = result.get("metrics", {})
    headline = (
        f"micro-F1 {metrics['micro_f1']:.3f}, exact-set {metrics['exact_match']:.3f}"
        if "micro_f1" in metrics
        else f"in-scope accuracy {metrics.get('in_scope_accuracy') or 0:.3f}, "
        f"out-of-scope recall {metrics.get('out_of_scope_recall') or 0:.3f}"
    )
    fig.suptitle(f"{title}: {result.get('encoder', '')}, {headline}", fontsize=12)
    _confusion_panel(left, result)
    _reliability_panel(right, result.get("reliability") or {})
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def _confusion_panel(ax: Any, result: Mapping[str, Any]) -> None:
    queries = result.get("queries")
    multi = result.get("kind") == "multi-label"
    if queries:
        labels, counts = confusion_matrix(queries, multi)
        if len(labels) <= HEATMAP_MAX_LABELS:
            _heatmap(ax, labels, counts)
            return
    pairs = list(result.get("confusions") or [])[:15]
    if not pairs:
        ax.text(0.5, 0.5, "no mistakes on the test rows", ha="center", va="center")
        ax.set_axis_off()
        return
    names = [f"{p['truth']} → {p['predicted']}" for p in reversed(pairs)]
    values = [p["count"] for p in reversed(pairs)]
    ax.barh(range(len(values)), values, color="#c0504d")
    ax.set_yticks(range(len(values)), names, fontsize=8)
    ax.set_xlabel("test queries")
    ax.set_title("most-confused label pairs (true → predicted instead)")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v}", va="center", fontsize=8)


def _heatmap(ax: Any, labels: list[str], counts: list[list[int]]) -> None:
    shares = [[c / (sum(row) or 1) for c in row] for row in counts]
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion (row share; counts written in)")
    for i, row in enumerate(counts):
        for j, c in enumerate(row):
            if c:
                ax.text(
                    j,
                    i,
                    str(c),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shares[i][j] > 0.5 else "black",
                )
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def _reliability_panel(ax: Any, rel: Mapping[str, Any]) -> None:
    bins = [b for b in rel.get("bins", []) if b["count"]]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    if bins:
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        width = bins[0]["high"] - bins[0]["low"]
        ax.bar(
            centres,
            [b["accuracy"] for b in bins],
            width=width * 0.9,
            color="#4f81bd",
            alpha=0.8,
            label="accuracy per bin",
        )
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            "o-",
            color="#1f3b63",
            markersize=4,
            label="accuracy at the bin's mean confidence",
        )
        for x, b in zip(centres, bins, strict=True):
            ax.text(x, min(b["accuracy"] + 0.02, 0.97), str(b["count"]), ha="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"confidence ({rel.get('kind', '')})")
    ax.set_ylabel("accuracy")
    ece = rel.get("ece")
    ax.set_title(
        "reliability" + (f": ECE {ece:.3f}" if ece is not None else "") + " (bar labels: rows per bin)"
    )
    ax.legend(loc="upper left", fontsize=8)
