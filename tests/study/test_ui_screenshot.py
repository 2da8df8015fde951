"""The MLflow UI as a person sees it: headless Chromium (Debian's, driven by Selenium and chromium-driver)
opens the server a study logged to, finds the study's experiment, its trial runs and a metric chart, and
saves a screenshot. Needs `make ui-test-deps` (apt: chromium chromium-driver; pip: selenium)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import kill_processes_under, ray_env, run_cli, tiny_study
from tests.study.test_mlflow_server import Server

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "runs" / "ui-screenshots"

pytestmark = pytest.mark.slow


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium missing: make ui-test-deps")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian chromium / chromium-driver missing: make ui-test-deps")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def _page_has(browser, text: str, attribute: str | None) -> bool:
    if attribute is None:
        return text in browser.find_element("tag name", "body").text
    return bool(browser.find_elements("css selector", f"[{attribute}*='{text}']"))


def _wait_text(browser, text: str, timeout: float = 60, attribute: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not _page_has(browser, text, attribute):
        if time.monotonic() > deadline:
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(SCREENSHOT_DIR / "failed.png"))
            raise AssertionError(f"{text!r} not on the page {browser.current_url}")
        time.sleep(0.5)


def _show_child_runs(browser, landing: str, text: str, timeout: float = 30) -> None:
    """The trials' runs are nested under the study's parent run: expand it (its "+"), else filter the table on
    the trials' kind as a person would, which lists them on their own."""
    from urllib.parse import quote

    deadline = time.monotonic() + timeout
    while not _page_has(browser, text, None) and time.monotonic() < deadline:
        for button in browser.find_elements("xpath", "//*[normalize-space(text())='uistudy']/preceding::button[1]"):
            try:
                button.click()
            except Exception:  # noqa: BLE001 - a button that went stale as the table redrew
                continue
        time.sleep(1)
    if not _page_has(browser, text, None):
        trials_only = quote("tags.`smoothstudy.kind` = 'trial'")
        browser.get(f"{landing}?searchFilter={trials_only}")
    _wait_text(browser, text)


def test_mlflow_ui_shows_study_runs_and_a_metric_chart(tmp_path):
    from mlflow import MlflowClient

    from analysis.results import read_trials

    browser = _browser()
    server = Server(tmp_path / "mlflow").start(timeout=300)  # a busy machine starts its workers slowly
    env = ray_env()
    try:
        study_file = tiny_study(tmp_path, "uistudy", search={"num_samples": 2, "max_concurrent": 2,
                                                             "n_startup_trials": 1}, asha={"enabled": False})
        run_cli("run", study_file, "--storage", str(tmp_path / "runs"), "--mlflow-uri", server.uri, env=env)
        client = MlflowClient(server.uri)
        experiment = client.get_experiment_by_name("uistudy")
        trial = client.search_runs([experiment.experiment_id], filter_string="tags.`smoothstudy.kind` = 'trial'")[0]

        browser.get(server.uri)
        _wait_text(browser, "uistudy")  # the experiment is listed
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        # where `smoothstudy ui` sends a first-time user: the runs table, not MLflow 3's GenAI overview
        from analysis.core.layout import StudyDir
        from study import ui

        landing = ui.open_ui(StudyDir(tmp_path / "runs" / "uistudy"), open_browser=False, echo=lambda line: None)
        assert landing == f"{server.uri.rstrip('/')}/#/experiments/{experiment.experiment_id}/runs"
        browser.get(landing)
        _wait_text(browser, "uistudy")  # the study's parent run heads the runs table
        assert "0 traces" not in browser.find_element("tag name", "body").text
        # the runs table names each trial's run by its method (then its hyperparameters and short id), not by
        # a Ray id alone: above the fold, a person sees which method each run is
        methods = sorted(set(read_trials(tmp_path / "runs" / "uistudy")["config/loss"]))
        _show_child_runs(browser, landing, f"{methods[0]} ")
        for method in methods:
            names = [r.info.run_name for r in client.search_runs([experiment.experiment_id],
                     filter_string=f"params.loss = '{method}'")]
            assert names and all(n.startswith(f"{method} ") for n in names)
            _wait_text(browser, names[0])
        browser.save_screenshot(str(SCREENSHOT_DIR / "mlflow_runs.png"))
        browser.get(f"{server.uri}/#/experiments/{experiment.experiment_id}/runs/{trial.info.run_id}")
        _wait_text(browser, trial.info.run_name)  # a trial's run, with its params and metrics
        _wait_text(browser, "val/acc")
        browser.save_screenshot(str(SCREENSHOT_DIR / "mlflow_trial_run.png"))
        # the run's "Model metrics" tab: a chart per metric, val/acc among them
        browser.find_element("xpath", "//*[normalize-space(text())='Model metrics']").click()
        _wait_text(browser, "Search metric charts", attribute="placeholder")
        browser.find_element("css selector", "input[placeholder*='Search metric charts']").send_keys("val/acc")
        _wait_text(browser, f"{trial.info.run_name} (val/acc)")  # the chart's legend
        deadline = time.monotonic() + 60
        while not browser.find_elements("css selector", "svg .plot, canvas, .js-plotly-plot, svg path"):
            assert time.monotonic() < deadline, "no chart drawn"
            time.sleep(0.5)
        time.sleep(2)  # let the charts finish drawing before the picture
        shot = SCREENSHOT_DIR / "mlflow_metric_val_acc.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.quit()
        server.stop()
        kill_processes_under(env["RAY_TMPDIR"])
