"""The kernels page: the count gate's history with each series' first bad commit, the
one-run benchmark tables, the static GPU report and the wall-clock timings across commits,
all from ``suites.site_data.kernels``."""

from __future__ import annotations

import pandas as pd

from suites import site_data
from suites.site_data import kernels as kernel_data
from suites.site_data.kernels.timings import CHANGE_THRESHOLD, short
from suites.sitegen import kernel_plots, plots
from suites.sitegen.pages import Site


def kernels_page(site: Site, kernels: pd.DataFrame) -> None:
    root = site.results.root
    tables = site_data.kernel_tables(kernels)
    for number, table in enumerate(tables):
        table["href"] = site.raw_href(table["file"], "")
        table["plot"] = plots.plot_bandwidth(table["rows"], table["device"],
                                             salt=f"kernels-{number}")
    reports, _ = site_data.static_reports(root / "kernels")
    for report in reports:
        report["href"] = site.raw_href(report["file"], "")
    counts = kernel_data.load_counts(root / "counts")
    units = {s.figure: s.unit for s in counts.series}
    count_plots = [{"figure": figure, "unit": units[figure], "svg": svg}
                   for number, figure in enumerate(counts.figures())
                   if (svg := kernel_plots.plot_counts(counts, figure, f"counts-{number}"))]
    timings = kernel_data.load(root)
    timing_plots = [{"benchmark": b, "svg": kernel_plots.plot_timings(timings, b, f"timings-{b}")}
                    for b in timings.benchmarks()]
    site.render("kernels.html", "kernels.html", tables=tables, static_reports=reports,
                counts=counts, count_plots=count_plots, moved=kernel_data.moved_rows(counts),
                timing_plots=timing_plots, timing_changes=kernel_data.changes(timings),
                timings=timings, change_threshold=CHANGE_THRESHOLD, short=short)
