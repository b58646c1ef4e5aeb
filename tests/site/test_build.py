"""``build_site`` end to end: pages, links, escaping, reproducibility, atomic swaps, CLI."""

from __future__ import annotations

import argparse
import filecmp
import html
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
from site_fixture import HOSTILE_DOC, HOSTILE_NAME, VARIANTS, write_fixture

from suites import registry, sitegen
from suites.api import Budget, Metric, Problem
from suites.common import BaseTask
from suites.executors import LocalExecutor
from suites.results import ResultStore
from suites.sitegen import kernel_pages
from suites.submission import load_submission
from suites.tuning import run_sweep
from suites.validation import validate_submission


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("href", "src") and value]


def links_of(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.links


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def broken_links(site: Path) -> list[str]:
    """Links that leave the site or point at nothing, as 'page: link'."""
    broken = []
    for page in html_pages(site):
        for link in links_of(page):
            parts = urlsplit(link)
            if link.startswith("data:") or (not parts.path and parts.fragment):
                continue
            if parts.scheme or parts.netloc or link.startswith("/"):
                broken.append(f"{page.relative_to(site)}: {link} (not relative)")
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{page.relative_to(site)}: {link}")
    return broken


def test_every_page_is_there(built_site):
    pages = {p.relative_to(built_site).as_posix() for p in html_pages(built_site)}
    assert {"index.html", "kernels.html", "submit.html", "suite/chain.html", "suite/valley.html",
            "suite/lra.html", "task/chain--depth-4-const.html", "task/valley--widening.html",
            "task/lra--listops.html", "optimizer/adam.html", "optimizer/sgd.html"} <= pages
    assert len(list((built_site / "optimizer").glob("*.html"))) == 4
    assert (built_site / "static" / "style.css").is_file()
    assert (built_site / "static" / "sort.js").is_file()


def test_every_internal_link_resolves(built_site):
    assert broken_links(built_site) == []
    index_links = links_of(built_site / "index.html")
    assert "optimizer/adam.html" in index_links and "suite/chain.html" in index_links


def test_raw_files_are_copied_and_linked(built_site, results_dir):
    adam = (built_site / "optimizer" / "adam.html").read_text()
    raw = re.findall(r'href="\.\./(raw/runs/[^"]+\.json)"', adam)
    assert len(raw) >= 5 * 5  # every tuning and evaluation run of the optimizer
    for link in raw:
        original = results_dir / link.removeprefix("raw/")
        assert (built_site / link).read_bytes() == original.read_bytes()
    assert 'href="../raw/optimizers/adam/adam.py"' in adam
    assert (built_site / "raw" / "kernels" / "gpu-host-20260101.json").is_file()


def test_with_a_raw_url_run_files_are_linked_there_not_copied(built_site, results_dir,
                                                              tmp_path):
    url = "https://example.org/lsb/results/"
    site = sitegen.build_site(results_dir, tmp_path / "linked", raw_url=url.rstrip("/")).parent
    # Only the optimizers' sources, which the site writes, are in raw/.
    assert {p.parts[0] for p in (site / "raw").iterdir() for p in [p.relative_to(site / "raw")]} \
        == {"optimizers"}
    adam = (site / "optimizer" / "adam.html").read_text()
    copied = re.findall(r'href="\.\./raw/(runs/[^"]+\.json)"',
                        (built_site / "optimizer" / "adam.html").read_text())
    linked = re.findall(r'href="https://example\.org/lsb/results/(runs/[^"]+\.json)"', adam)
    assert linked == copied and len(linked) >= 5 * 5
    assert 'href="../raw/optimizers/adam/adam.py"' in adam
    assert "raw/" not in "".join(links_of(site / "kernels.html"))
    assert [link for link in broken_links(site) if "(not relative)" not in link] == []


@pytest.mark.parametrize("url", ["javascript:alert(1)//", "file:///etc/", "https://",
                                 "https://example.org/r?x=1", 'https://example.org/"x'])
def test_a_raw_url_that_is_not_a_web_directory_is_refused(url, results_dir, tmp_path):
    with pytest.raises(sitegen.SiteError, match="--raw-url"):
        sitegen.build_site(results_dir, tmp_path / "site", raw_url=url)
    assert not (tmp_path / "site").exists()


def test_no_external_resources(built_site):
    for page in html_pages(built_site):
        text = page.read_text()
        assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
            'xmlns:xlink="http://www.w3.org/1999/xlink"', ""), page
        assert "https://" not in text, page
    assert "url(" not in (built_site / "static" / "style.css").read_text()


def test_untrusted_names_and_docstrings_are_escaped(built_site):
    for page in html_pages(built_site):
        text = page.read_text()
        assert "<script>alert" not in text, page
        assert len(re.findall(r"<script\b", text)) == 1, page  # only the site's sort.js
    page = next((built_site / "optimizer").glob("script-alert-*.html")).read_text()
    assert "<h1>" in page and "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;</h1>" in page
    assert "Hostile &lt;script&gt;alert(&#39;doc&#39;)&lt;/script&gt; optimizer &amp; friends." \
        in page
    assert html.unescape(html.escape(HOSTILE_DOC)) == HOSTILE_DOC


def test_index_content(built_site):
    index = (built_site / "index.html").read_text()
    assert 'id="leaderboard"' in index and "<svg" in index
    for header in ("Score", "chain", "valley", "lra", "Own grid near best", "Time ×SGD", "Runs",
                   "Last run"):
        assert f">{header}</th>" in index
    assert "runs/chain/broken.json" in index and "runs/valley/future.json" in index
    assert "kernels/truncated.json" in index
    board = index.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    assert board.index(">adam</a>") < board.index(">sgd</a>")  # rank order


def test_the_pairwise_matrix_agrees_with_the_ranks(built_site, results_dir):
    from suites import leaderboard

    index = (built_site / "index.html").read_text()
    matrix = index.split('class="pairwise"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<th scope="row">\d+\. ([^<]+)</th>(.*?)</tr>', matrix)
    overall = leaderboard.overall_table(leaderboard.load_runs(results_dir), "quick")
    assert [html.unescape(name) for name, _ in rows] == list(overall["optimizer"])
    for (_, cells), rank in zip(rows, overall["tied_rank"], strict=True):
        outcomes = re.findall(r'<td class="(\w+)"', cells)
        assert len(outcomes) == len(rows) and outcomes.count("self") == 1
        # The rank is 1 + the optimizers that beat this one: its "loses" cells.
        assert int(rank.lstrip("=")) == 1 + outcomes.count("loses")
    groups = leaderboard.rank_groups(overall["tied_rank"])
    assert f"{groups} rank group" in index


def variants_section(index: str) -> str:
    return index.split('<section id="variants">', 1)[1].split("</section>", 1)[0]


def test_the_variants_section_shows_tau_ranks_and_changes(built_site, results_dir):
    """The fixture's public order is adam, rmsprop, sgd, the hostile one; every variant
    orders them rmsprop, adam, sgd, the hostile one: one swapped pair of six, so Kendall's
    tau is (5 - 1) / 6, rmsprop gains a rank and adam loses one."""
    from suites import leaderboard, site_data

    section = variants_section((built_site / "index.html").read_text())
    assert f"evaluated on {len(VARIANTS)} held-out variant tasks" in section
    assert '<strong class="tau">0.67</strong>' in section
    _, tau = leaderboard.variant_table(site_data.load_results(results_dir).runs, "quick")
    assert tau["tau"] == pytest.approx(4 / 6) and tau["variant_tasks"] == len(VARIANTS)
    assert tau["tau_low"] <= tau["tau"] <= tau["tau_high"]
    assert (f'95 % bootstrap interval <span class="tau-interval">{tau["tau_low"]:.2f} to '
            f'{tau["tau_high"]:.2f}</span>') in section
    table = section.split('id="variant-board"', 1)[1]
    body = table.split("<tbody>", 1)[1]
    rows = [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
    shown = [(rank, html.unescape(name), ranks, change)
             for rank, name, _, _, ranks, change in rows]
    assert shown == [("1", "rmsprop", "2 → 1", "+1"), ("2", "adam", "1 → 2", "−1"),
                     ("3", "sgd", "3 → 3", "0"), ("4", HOSTILE_NAME, "4 → 4", "0")]


def test_without_held_out_runs_the_variants_section_says_so(tmp_path):
    results = write_fixture(tmp_path / "results", held_out=False)
    sitegen.build_site(results, tmp_path / "site")
    section = variants_section((tmp_path / "site" / "index.html").read_text())
    assert 'id="variant-board"' not in section
    sentence = re.sub(r"<[^>]+>", "", section.split('<p class="note">', 1)[1].split("</p>")[0])
    assert sentence == ("No held-out variant runs at the quick budget to compare with the "
                        "public ranking: lsb run evaluates the variants unless --no-variants "
                        "is given.")


def test_task_and_suite_pages_show_what_fits(built_site):
    chain = (built_site / "suite" / "chain.html").read_text()
    assert "evaluations to escape against depth" in chain and "<svg" in chain
    valley = (built_site / "task" / "valley--widening.html").read_text()
    assert "Training loss" in valley
    assert "Hessian trace Tr ∇²f during training" in valley and "‖u‖² during training" in valley
    assert "± " in valley and "3/3" in valley
    lra = (built_site / "task" / "lra--listops.html").read_text()
    assert "Accuracy during training" in lra and "higher is better" in lra
    chance = lra.split('<p class="note chance">', 1)[1].split("</p>", 1)[0]
    assert "Chance on this task's test split: 13% (the most frequent class of 1,000" in chance
    finding = chance.split("Did not train the network", 1)[1]
    assert finding.count("optimizer/") == 1 and "&lt;script&gt;" in finding  # the hostile one
    chain4 = (built_site / "task" / "chain--depth-4-const.html").read_text()
    assert "Score of each evaluation seed" in chain4  # the score is known only at the end
    assert "Chance on this" not in chain4 and "Chance on this" not in valley


def test_same_colour_for_an_optimizer_on_every_page(built_site):
    colour = sitegen.optimizer_colours(["adam", "rmsprop", "sgd", HOSTILE_NAME])["adam"]
    for page in ("index.html", "suite/chain.html", "task/lra--listops.html", "optimizer/adam.html"):
        text = (built_site / page).read_text()
        assert f'style="background: {colour}"' in text, page
        if "<svg" in text and page != "optimizer/adam.html":
            assert f"stroke: {colour}" in text, page


def test_kernels_page_names_the_device_on_every_table(built_site):
    page = (built_site / "kernels.html").read_text()
    tables = page.count("<table")
    assert tables == page.count("<caption>Kernels on NVIDIA H100 80GB HBM3</caption>") == 1
    assert "8.00×" in page and "6.00×" in page and "gpu-host" in page
    assert "asv/index.html" not in page


def test_two_builds_are_byte_identical(built_site, results_dir, tmp_path):
    again = sitegen.build_site(results_dir, tmp_path / "again").parent
    first = sorted(p.relative_to(built_site) for p in built_site.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second
    _, mismatch, errors = filecmp.cmpfiles(built_site, again, [str(p) for p in first],
                                           shallow=False)
    assert mismatch == [] and errors == []


def test_empty_results_directory(tmp_path):
    (tmp_path / "no-results").mkdir()
    index = sitegen.build_site(tmp_path / "no-results", tmp_path / "site")
    text = index.read_text()
    assert "No results yet" in text
    assert "No result file failed validation." in text
    assert "No kernel benchmarks yet" in (index.parent / "kernels.html").read_text()
    assert broken_links(index.parent) == []


def test_failed_build_keeps_the_previous_site(tmp_path, monkeypatch):
    out = tmp_path / "site"
    (tmp_path / "results").mkdir()
    sitegen.build_site(tmp_path / "results", out)
    before = (out / "index.html").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(kernel_pages, "kernels_page", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        sitegen.build_site(tmp_path / "results", out)
    assert (out / "index.html").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "site"]
    assert not [p for p in out.iterdir() if p.name.startswith(".lsb-staging")]


def test_rebuild_keeps_the_asv_dashboard(tmp_path):
    out = tmp_path / "site"
    (tmp_path / "results").mkdir()
    sitegen.build_site(tmp_path / "results", out)
    (out / "asv").mkdir(parents=True)
    (out / "asv" / "index.html").write_text("<html>asv</html>")
    (out / "stale.html").write_text("from an older build")
    sitegen.build_site(tmp_path / "results", out)
    assert (out / "asv" / "index.html").read_text() == "<html>asv</html>"
    assert not (out / "stale.html").exists()
    assert 'href="asv/index.html"' in (out / "kernels.html").read_text()


# --------------------------------------------------------------------------- CLI


def test_site_commands_on_a_parser(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    parser = argparse.ArgumentParser(prog="lsb")
    sitegen.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["site", "build", "--results", str(tmp_path / "r"),
                              "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    assert (tmp_path / "out" / "index.html").is_file()
    assert f"file://{(tmp_path / 'out' / 'index.html').resolve()}" in capsys.readouterr().out
    args = parser.parse_args(["site", "serve", "--port", "8123"])
    assert (args.port, args.out) == (8123, "site/build")
    with pytest.raises(SystemExit):
        parser.parse_args(["site"])


def test_lsb_site_build(tmp_path, capsys):
    from suites.cli import main

    out = tmp_path / "out"
    (tmp_path / "r").mkdir()
    assert main(["site", "build", "--results", str(tmp_path / "r"), "--out", str(out)]) == 0
    assert (out / "index.html").is_file()
    assert "site: open file://" in capsys.readouterr().out


# --------------------------------------------------------------------------- submit page


@dataclass(frozen=True)
class BowlTask(BaseTask):
    """½‖x‖² from (1, −2): a task small enough to tune a submission on in a second."""

    def setup(self, seed: int, budget: str) -> Problem:
        x = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        loss = lambda step: 0.5 * (x**2).sum()
        return Problem(param_groups=[{"params": [x]}], loss=loss,
                       evaluate=lambda: {"final_loss": float(loss(0))},
                       steps=self.budgets.steps(budget), eval_every=5)


@pytest.mark.slow
def test_the_example_on_the_submit_page_is_a_working_submission(tmp_path):
    """The Submit page's example validates, runs the tuning protocol and gets its page."""
    example = sitegen.EXAMPLE_SUBMISSION
    assert validate_submission(example) == []
    submission = load_submission(example)
    assert submission.description.startswith("Signum")
    assert registry.builtin_optimizer_paths().get(submission.name) is None

    bowl = BowlTask("bowl/quadratic", "A quadratic bowl.", Budget(smoke=20, quick=40, full=80),
                    Metric("final_loss", higher_is_better=False))
    results = tmp_path / "results"
    with LocalExecutor(jobs=1) as executor:
        report = run_sweep([bowl], [submission], "smoke", store=ResultStore(results),
                           executor=executor)
    # The grid, one evaluation seed, and the tuned step size × 2^k for the six k ≠ 0.
    assert report.runs_made == len(submission.configs()) + 1 + 6
    assert {r.status for r in report.results} == {"ok"}

    site = sitegen.build_site(results, tmp_path / "site").parent
    submit = (site / "submit.html").read_text()
    assert example.read_text() in html.unescape(submit)  # verbatim
    page = (site / "optimizer" / f"{submission.name}.html").read_text()
    assert "Signum: sign descent with momentum" in page
    assert submission.source_hash in page
    assert "<code>lr</code>: <code>[0.001, 0.01, 0.1]</code>" in page
    assert broken_links(site) == []


def test_served_site(built_site):
    import threading
    import urllib.request

    with sitegen.make_server(built_site, 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            with urllib.request.urlopen(url + "index.html", timeout=10) as response:
                assert response.status == 200 and b'id="leaderboard"' in response.read()
            with urllib.request.urlopen(url + "static/style.css", timeout=10) as response:
                assert response.headers["Content-Type"] == "text/css"
        finally:
            server.shutdown()
            thread.join(timeout=10)


def test_forty_optimizers_keep_forty_distinct_colours():
    colours = sitegen.optimizer_colours([f"optimizer-{i}" for i in range(40)])
    assert len(set(colours.values())) == 40
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours.values())


def test_the_kernels_page_shows_the_static_gpu_report(tmp_path):
    committed = sorted(Path(registry.SUITES_DIR.parent / "results" / "kernels")
                       .glob("static-*.json"))[-1]
    results = tmp_path / "results"
    (results / "kernels").mkdir(parents=True)
    (results / "kernels" / committed.name).write_bytes(committed.read_bytes())
    sitegen.build_site(results, tmp_path / "site")
    page = (tmp_path / "site" / "kernels.html").read_text()
    assert "Static GPU report" in page and "_single_pass_kernel" in page
    first = json.loads(committed.read_text())["cases"][0]["kernels"][0]["compiled"]
    sm90 = next(c for c in first if c["arch"] == "sm_90")
    assert f"sm_90: {sm90['registers']} · 0 · " in page  # no spills at the benchmark plans
    assert committed.name not in (tmp_path / "site" / "index.html").read_text()  # no Problem
