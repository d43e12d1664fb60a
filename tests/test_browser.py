"""The search page end to end in headless Chromium (selenium + chromedriver): search, highlighted passages, ask.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them when it can).
Screenshots go to the test's temporary folder; set ``SIXFOLD_SCREENSHOT_DIR=docs`` to refresh the ones in docs/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from live_server import LiveServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="the browser test needs headless Chromium: apt-get install chromium chromium-driver",
)
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def test_search_page_ranks_highlights_and_answers(shared_index, browser, tmp_path):
    from sixfold.http import create_app

    shots = Path(os.environ.get("SIXFOLD_SCREENSHOT_DIR") or tmp_path)
    with LiveServer(create_app(shared_index.path)) as live:
        browser.get(live.url + "/")
        status = WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.ID, "status").text if "chunks" in d.find_element(By.ID, "status").text else None
        )
        assert "6 documents" in status and "all-MiniLM-L6-v2" in status

        box = browser.find_element(By.ID, "q")
        box.send_keys("Who were the Normans descended from?", Keys.ENTER)
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.hit"))
        hits = browser.find_elements(By.CSS_SELECTOR, "li.hit")
        assert len(hits) == 10
        assert [h.find_element(By.CLASS_NAME, "rank").text for h in hits[:3]] == ["#1", "#2", "#3"]
        assert hits[0].find_element(By.CLASS_NAME, "path").text == "history/normans.md"
        marked = {m.text.lower() for m in hits[0].find_elements(By.TAG_NAME, "mark")}
        assert {"normans", "descended"} <= marked, marked
        assert browser.find_element(By.ID, "error").text == ""
        browser.save_screenshot(str(shots / "screenshot-search.png"))

        browser.find_element(By.XPATH, "//label[input[@id='mode-ask']]").click()
        browser.find_element(By.ID, "go").click()
        answer = WebDriverWait(browser, 240).until(lambda d: d.find_elements(By.ID, "answer-text"))[0].text
        assert answer.strip()
        cited = browser.find_elements(By.CSS_SELECTOR, "li.cite")
        assert cited and cited[0].find_element(By.CLASS_NAME, "path").text == "history/normans.md"
        if "not found" not in answer:
            assert "norse" in answer.lower() or "vikings" in answer.lower() or "denmark" in answer.lower(), answer
        browser.save_screenshot(str(shots / "screenshot-ask.png"))
        assert (shots / "screenshot-search.png").stat().st_size > 10_000
