"""The web page in a real headless browser (Debian's chromium, driven by Selenium through
chromedriver): a clip chosen in the file input comes back as the top-5 bars, the class
activation overlay on the sampled frames and the timeline chart, as the API gives them; the
API docs page renders without the internet.
``ACTIONREC_SCREENSHOT=docs/serve_page.png`` also writes the screenshot docs/deployment.md shows."""

import os
import shutil

import pytest

from tests.serve.conftest import call, served

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1000,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_page_shows_top5_overlay_and_timeline(browser, trained_tsn, tmp_path, clips):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = clips / "clip.mp4"
    with served(trained_tsn, tmp_path) as (url, _, _):
        _, expected, _ = call(url, "/v1/predict?cam=true&timeline=true", clip.read_bytes())
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(
            lambda d: "classes" in d.find_element(By.ID, "model").text)
        browser.find_element(By.ID, "file").send_keys(str(clip))
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "result").is_displayed())
        rows = browser.find_elements(By.CSS_SELECTOR, "#top5 .bar")
        assert [r.find_element(By.CLASS_NAME, "name").text for r in rows] == [
            t["class"] for t in expected["top"]]
        assert rows[0].find_element(By.CLASS_NAME, "prob").text == \
            f"{100 * expected['top'][0]['prob']:.1f}%"
        images = browser.find_elements(By.CSS_SELECTOR, "#overlay img")
        assert len(images) == len(expected["cam"]["frames"]) == 4
        assert all(browser.execute_script("return arguments[0].complete && "
                                          "arguments[0].naturalWidth", i) == 32 for i in images)
        assert [i.get_attribute("src") for i in images] == expected["cam"]["frames"]
        lines = browser.find_elements(By.CSS_SELECTOR, "#timeline polyline")
        assert len(lines) == 5 and all(len(line.get_attribute("points").split()) == len(
            expected["timeline"]["windows"]) for line in lines)
        shot = tmp_path / "serve_page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        # the interactive API docs render from this server's files alone
        browser.get(url + "/docs")
        WebDriverWait(browser, 30).until(
            lambda d: "/v1/predict" in d.find_element(By.TAG_NAME, "body").text)
    if os.environ.get("ACTIONREC_SCREENSHOT"):
        shutil.copy(shot, os.environ["ACTIONREC_SCREENSHOT"])
