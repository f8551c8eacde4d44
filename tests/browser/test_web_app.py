"""The web app at `/` in a real browser: a person's way through it, against whisper base.

One browser and one server for the module; every test starts from a fresh load of the page with the
key stored, and fails on any console error (conftest.py). Screenshots go to /tmp/screens/.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import SCREENS
from tests.e2e.conftest import API_KEY, Server
from tests.e2e.test_real_speech import BASE_SAYS, cue_texts
from training.sentences import words

pytestmark = pytest.mark.real_weights

T = TypeVar("T")


def wait(browser: Chrome, condition: Callable[[Chrome], T], seconds: float = 60) -> T:
    # The job list redraws a row when its job changes: an element found a moment ago may be gone.
    waiting = WebDriverWait(
        browser, seconds, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )
    return waiting.until(condition)


def by_id(browser: Chrome, element_id: str):  # type: ignore[no-untyped-def]
    return browser.find_element(By.ID, element_id)


def choose_file(browser: Chrome, path: Path) -> None:
    by_id(browser, "file-input").send_keys(str(path))


def drop_file(browser: Chrome, path: Path) -> None:
    """Drag `path` from the desktop onto the drop zone, as the browser delivers it: a drop event whose
    DataTransfer holds the file."""
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], arguments[1], { type: "audio/wav" }));
        const zone = document.getElementById("drop");
        for (const type of ["dragenter", "dragover", "drop"]) {
          const event = { dataTransfer: transfer, bubbles: true, cancelable: true };
          zone.dispatchEvent(new DragEvent(type, event));
        }
        """,
        base64.b64encode(path.read_bytes()).decode(),
        path.name,
    )


def transcript_words(browser: Chrome) -> list[str]:
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, "#transcript .word")]


def downloaded(downloads: Path, name: str, browser: Chrome) -> str:
    path = downloads / name
    wait(browser, lambda _: path.is_file() and path.stat().st_size > 0, 10)
    return path.read_text()


def test_a_first_visit_asks_for_the_key_once_and_then_lists_the_models(
    browser: Chrome, real_server: Server, console: list[dict]
) -> None:
    browser.get(f"{real_server.base_url}/web/icon.svg")
    browser.execute_script("localStorage.clear()")
    browser.get(f"{real_server.base_url}/")
    dialog = wait(
        browser, lambda b: by_id(b, "key-dialog") if by_id(b, "key-dialog").is_displayed() else None
    )
    assert "needs an API key" in dialog.text
    browser.save_screenshot(str(SCREENS / "key-dialog.png"))
    by_id(browser, "key-input").send_keys(API_KEY, Keys.ENTER)
    wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#model option")) > 1)
    assert "base" in [option.text for option in browser.find_elements(By.CSS_SELECTOR, "#model option")]
    assert not by_id(browser, "notice").is_displayed()
    # Kept in the browser: the next visit asks nothing.
    browser.refresh()
    wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#model option")) > 1)
    assert not by_id(browser, "key-dialog").is_displayed()
    # The one refused request is the visit before the key: the browser logs it as a failed load.
    console.extend(browser.get_log("browser"))
    refused = [entry for entry in console if "/v1/models" in entry["message"] and "401" in entry["message"]]
    assert len(refused) == 1
    console.remove(refused[0])


def test_an_uploaded_file_is_transcribed_with_its_language_and_words_that_seek_the_player(
    page: Chrome, jfk_wav: Path
) -> None:
    choose_file(page, jfk_wav)
    by_id(page, "transcribe").click()
    wait(page, lambda b: transcript_words(b))
    page.save_screenshot(str(SCREENS / "transcribed.png"))
    assert words(" ".join(transcript_words(page))) == words(BASE_SAYS)
    assert re.fullmatch(r"Detected language: English \(\d+ % sure\)", by_id(page, "detected").text)

    country = next(w for w in page.find_elements(By.CSS_SELECTOR, "#transcript .word") if w.text == "country")
    country.click()
    start = float(country.get_attribute("data-start"))
    position = wait(
        page, lambda b: b.execute_script("return document.querySelector('#player audio').currentTime")
    )
    assert position == pytest.approx(start, abs=0.3)
    # Playing from there, the word being spoken is the highlighted one.
    wait(page, lambda b: b.find_elements(By.CSS_SELECTOR, "#transcript .word.current"), 10)
    page.save_screenshot(str(SCREENS / "playing.png"))


def test_a_job_queued_from_a_dropped_file_reaches_100_percent_and_opens_with_the_srt_and_vtt_downloads(
    page: Chrome, real_server: Server, jfk_wav: Path, downloads: Path
) -> None:
    drop_file(page, jfk_wav)
    by_id(page, "queue-job").click()
    done = wait(page, lambda b: b.find_elements(By.CSS_SELECTOR, '#jobs .job[data-status="succeeded"]'))
    job, job_id = done[0], done[0].get_attribute("data-id")
    assert "100 %" in job.text and "jfk.wav" in job.text
    page.save_screenshot(str(SCREENS / "jobs.png"))
    job.find_element(By.XPATH, ".//button[text()='Open']").click()
    wait(page, lambda b: transcript_words(b))
    assert words(" ".join(transcript_words(page))) == words(BASE_SAYS)
    assert page.execute_script("return document.querySelector('#player audio').duration") == pytest.approx(
        11, abs=0.1
    )
    # The page renders downloads itself, cue for cue as the server renders the stored result.
    for subtitles in ("srt", "vtt"):
        page.find_element(By.CSS_SELECTOR, f'.download[data-format="{subtitles}"]').click()
        server_rendering = httpx.get(
            f"{real_server.base_url}/v1/transcription-jobs/{job_id}/result",
            params={"format": subtitles},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ).text
        assert downloaded(downloads, f"jfk.{subtitles}", page) == server_rendering
    srt = (downloads / "jfk.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:")
    assert words(" ".join(cue_texts(srt))) == words(BASE_SAYS)


def test_a_running_job_is_cancelled_from_the_list(page: Chrome, very_long_wav: Path) -> None:
    choose_file(page, very_long_wav)
    by_id(page, "queue-job").click()
    running = '#jobs .job[data-status="running"]'
    wait(page, lambda b: "Running" in b.find_element(By.CSS_SELECTOR, running).text)

    def cancel(browser: Chrome) -> bool:
        browser.find_element(By.CSS_SELECTOR, running).find_element(
            By.XPATH, ".//button[text()='Cancel']"
        ).click()
        return True

    wait(page, cancel)
    cancelled = wait(page, lambda b: b.find_element(By.CSS_SELECTOR, '#jobs .job[data-status="cancelled"]'))
    assert "Cancelled" in cancelled.text and "very-long.wav" in cancelled.text


def test_live_captions_from_the_microphone_show_the_spoken_words(page: Chrome) -> None:
    by_id(page, "tab-live").click()
    by_id(page, "live-start").click()
    # Chromium's fake microphone plays jfk.wav: its first phrase comes back as final text (seconds on a
    # quiet machine; the wait allows for a busy one, each pass of base's encoder taking ten times as long).
    wait(page, lambda b: float(by_id(b, "level").get_attribute("value")) > 0, 10)
    finals = wait(
        page, lambda b: " ".join(e.text for e in b.find_elements(By.CSS_SELECTOR, "#captions .final")), 120
    )
    assert words(finals)[:5] == ["and", "so", "my", "fellow", "americans"]
    page.save_screenshot(str(SCREENS / "live.png"))
    by_id(page, "live-stop").click()
    # The microphone is released at once; what it heard is transcribed before the server closes.
    assert page.execute_script("return document.querySelector('#level').value") == 0
    wait(page, lambda b: by_id(b, "live-status").text == "Stopped.", 120)
    assert by_id(page, "live-start").is_enabled()


def test_on_a_phone_sized_screen_nothing_overflows_and_every_control_is_labelled(page: Chrome) -> None:
    page.set_window_size(390, 844)
    try:
        page.refresh()
        wait(page, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#model option")) > 1)
        page.save_screenshot(str(SCREENS / "phone.png"))
        assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        unlabelled = page.execute_script(
            "return [...document.querySelectorAll('input, select, textarea, button')]"
            ".filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))"
            ".map(e => e.id || e.outerHTML)"
        )
        assert unlabelled == []
    finally:
        page.set_window_size(1280, 900)


def test_the_tabs_work_from_the_keyboard(page: Chrome) -> None:
    by_id(page, "tab-file").send_keys(Keys.ARROW_RIGHT)
    assert by_id(page, "tab-live").get_attribute("aria-selected") == "true"
    assert by_id(page, "panel-live").is_displayed() and not by_id(page, "panel-file").is_displayed()
    # Tab leaves the tab list for the panel: the next stop is its first control.
    page.switch_to.active_element.send_keys(Keys.TAB)
    assert page.switch_to.active_element.get_attribute("id") == "live-model"
    page.switch_to.active_element.send_keys(Keys.SHIFT, Keys.TAB)
    page.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    assert by_id(page, "panel-file").is_displayed()
