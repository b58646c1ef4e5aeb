"""The site's page data: pandas frames and small records built from a results directory.

Everything the site shows as a number comes from here, and everything here comes from
the files of a results directory: ``runs/**.json`` (one run each, ``suites.results``;
``suites.site_data.runs`` and ``.summaries``), and ``kernels/``, ``counts/`` and ``asv/``
(kernel figures: ``suites.site_data.kernels``, their only reader). A file that fails
validation becomes a ``FileProblem`` instead of an error.
"""

from suites.site_data.common import FileProblem, natural_key
from suites.site_data.kernels import FUSED_IMPLS, kernel_frame, kernel_tables, static_reports
from suites.site_data.runs import (
    Band,
    OptimizerSource,
    Results,
    budget_counts,
    curve_band,
    eval_curve_keys,
    eval_file_index,
    file_hash,
    format_config,
    leaderboard_frame,
    load_results,
    optimizer_source,
    profile_curves,
    site_budget,
    suite_order,
    suite_tables,
    sweep_frame,
    task_order,
)
from suites.site_data.summaries import (
    configs_run,
    eval_run_count,
    failure_height,
    not_above_chance,
    optimizers_per_task,
    rank_cells,
    scaling_series,
    seed_scores,
    sensitivity_series,
    suite_counts,
    task_leaders,
    task_table,
)

__all__ = [
    "FUSED_IMPLS", "Band", "FileProblem", "OptimizerSource", "Results", "budget_counts",
    "configs_run", "curve_band", "eval_curve_keys", "eval_file_index", "eval_run_count",
    "failure_height", "file_hash", "format_config", "kernel_frame", "kernel_tables",
    "leaderboard_frame",
    "load_results", "natural_key", "not_above_chance", "optimizer_source", "optimizers_per_task",
    "profile_curves", "rank_cells", "scaling_series", "seed_scores", "sensitivity_series",
    "site_budget", "static_reports", "suite_counts", "suite_order", "suite_tables", "sweep_frame",
    "task_leaders", "task_order", "task_table",
]
