"""Routing evaluation and tuning: what `routegraph eval` and `routegraph tune` run.

Imported on first use: the harness loads the encoders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph._lazy import exports

if TYPE_CHECKING:
    from evals.analysis import analyse, confusions, format_breakdown, per_label, reliability
    from evals.datasets import Dataset, DatasetError, load_dataset
    from evals.harness import EvalError, evaluate, format_table, run_eval
    from evals.plots import plot_eval
    from evals.tune import TuneError, TuneResult, read_labelled, tune

_EXPORTS = {
    "analyse": "evals.analysis",
    "confusions": "evals.analysis",
    "format_breakdown": "evals.analysis",
    "per_label": "evals.analysis",
    "reliability": "evals.analysis",
    "plot_eval": "evals.plots",
    "Dataset": "evals.datasets",
    "DatasetError": "evals.datasets",
    "load_dataset": "evals.datasets",
    "EvalError": "evals.harness",
    "evaluate": "evals.harness",
    "format_table": "evals.harness",
    "run_eval": "evals.harness",
    "TuneError": "evals.tune",
    "TuneResult": "evals.tune",
    "read_labelled": "evals.tune",
    "tune": "evals.tune",
}

__all__ = [
    "Dataset",
    "DatasetError",
    "EvalError",
    "TuneError",
    "TuneResult",
    "analyse",
    "confusions",
    "evaluate",
    "format_breakdown",
    "format_table",
    "load_dataset",
    "per_label",
    "plot_eval",
    "read_labelled",
    "reliability",
    "run_eval",
    "tune",
]

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a name not among them
    __getattr__, __dir__ = exports(globals(), _EXPORTS)
