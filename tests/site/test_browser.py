"""The built site in a real browser: headless Debian Chromium driven by selenium.

Opens the index from ``file://``, sorts the leaderboard by clicking a column header,
follows a link to an optimizer page, takes screenshots, checks that the index fits a
1280×800 window and that the browser console stayed clean. No selenium-manager download:
the driver and browser paths are explicit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: The smallest window the index page's tables must fit without scrolling sideways.
SMALL_WINDOW = (1280, 800)
#: The committed results directory (``lsb site build``'s default).
COMMITTED_RESULTS = Path(__file__).resolve().parents[2] / "results"
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) or shutil.which("chromium") is None,
    reason="needs Debian's chromium and chromedriver in /usr/bin (`make browser` installs them)",
)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     f"--user-data-dir={profile}", "--window-size=1366,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


def console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def column_texts(driver, table_id: str, column: int) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [row.find_elements(By.TAG_NAME, "td")[column].text for row in rows]


def test_sort_follow_and_screenshot(driver, built_site, tmp_path):
    from selenium.webdriver.common.by import By

    driver.get((built_site / "index.html").resolve().as_uri())
    assert "LandscapeBench" in driver.title
    ranked = column_texts(driver, "leaderboard", 1)
    assert len(ranked) == 4

    # The "Optimizer" header sorts by name, ascending on the first click.
    header = driver.find_element(By.CSS_SELECTOR, "#leaderboard thead th:nth-child(2) button")
    header.click()
    by_name = column_texts(driver, "leaderboard", 1)
    assert by_name == sorted(ranked, key=str.lower)
    assert by_name != ranked
    assert header.find_element(By.XPATH, "..").get_attribute("aria-sort") == "ascending"
    header.click()
    assert column_texts(driver, "leaderboard", 1) == by_name[::-1]

    driver.save_screenshot(str(tmp_path / "index.png"))
    driver.find_element(By.LINK_TEXT, "adam").click()
    assert driver.current_url.endswith("/optimizer/adam.html")
    assert driver.find_element(By.TAG_NAME, "h1").text == "adam"
    assert "Adam for the site tests." in driver.page_source
    driver.save_screenshot(str(tmp_path / "optimizer.png"))

    driver.get((built_site / "task" / "valley--widening.html").resolve().as_uri())
    assert driver.find_elements(By.CSS_SELECTOR, "svg.plot")
    driver.save_screenshot(str(tmp_path / "task.png"))
    for name in ("index.png", "optimizer.png", "task.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert console_errors(driver) == []


def test_hostile_names_stay_text(driver, built_site):
    """The hostile optimizer's page runs no script: its name and docstring are text."""
    from selenium.webdriver.common.by import By
    from site_fixture import HOSTILE_DOC, HOSTILE_NAME

    page = next((built_site / "optimizer").glob("script-alert-*.html"))
    driver.get(page.resolve().as_uri())
    assert driver.find_element(By.TAG_NAME, "h1").text == HOSTILE_NAME
    assert HOSTILE_DOC in driver.find_element(By.CLASS_NAME, "lede").text
    assert driver.execute_script("return document.scripts.length") == 1
    assert console_errors(driver) == []


def index_widths(driver, site: Path) -> dict[str, float]:
    """The index page of ``site`` at ``SMALL_WINDOW``: the viewport's width, the page's
    scroll width, and each leaderboard table's width, right edge and scroll container."""
    driver.set_window_size(*SMALL_WINDOW)
    try:
        driver.get((site / "index.html").resolve().as_uri())
        return driver.execute_script("""
            const found = {inner: window.innerWidth,
                           page: document.documentElement.scrollWidth, tables: {}};
            for (const table of document.querySelectorAll("table.board")) {
                const box = table.getBoundingClientRect(), outer = table.parentElement;
                found.tables[table.id] = {width: box.width, right: box.right,
                                          scroll: outer.scrollWidth, client: outer.clientWidth};
            }
            return found;""")
    finally:
        driver.set_window_size(1366, 900)


def assert_fits(widths: dict) -> None:
    assert widths["inner"] == SMALL_WINDOW[0]
    assert widths["page"] <= widths["inner"], widths
    assert "leaderboard" in widths["tables"] and "variant-board" in widths["tables"]
    for name, table in widths["tables"].items():
        assert table["width"] <= widths["inner"] and table["right"] <= widths["inner"], name
        assert table["scroll"] <= table["client"], name  # no scrolling inside its box either


def test_the_index_fits_a_1280_by_800_window(driver, built_site):
    assert_fits(index_widths(driver, built_site))
    assert console_errors(driver) == []


@pytest.mark.slow
@pytest.mark.skipif(not (COMMITTED_RESULTS / "runs").is_dir(), reason="no committed results")
def test_the_committed_boards_index_fits_a_1280_by_800_window(driver, tmp_path):
    from suites.sitegen import build_site

    build_site(COMMITTED_RESULTS, tmp_path / "site")
    widths = index_widths(driver, tmp_path / "site")
    assert len(column_texts(driver, "leaderboard", 1)) >= 14
    assert_fits(widths)
