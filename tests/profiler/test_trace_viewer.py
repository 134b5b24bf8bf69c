"""The trace viewer page (tools/trace_viewer) served by ``fastinput-trace view``, in real headless Chromium.

Each browser test opens the page from the command's server (run as a subprocess and stopped with
Ctrl-C), drives it with the keyboard and mouse, reads the viewer's state through its test hook
``window.fastinputViewer`` instead of scraping pixels, and fails on any console error. Screenshots
go to ``artifacts/`` for a person to look at. Needs Debian's ``chromium`` (apt-get install -y chromium)
and the ``playwright`` package; never ``playwright install``.
"""

from __future__ import annotations

import contextlib
import gzip
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.profiler import trace_samples

REPO = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOOK = "window.fastinputViewer"
Sample = tuple[dict[str, Any], pathlib.Path]  # a generated trace and the file it was written to


@contextlib.contextmanager
def viewer_command(trace: pathlib.Path) -> Iterator[str]:
    """Runs ``fastinput-trace view TRACE --no-browser``, yields the URL it prints, then sends Ctrl-C
    (SIGINT) and checks that the command stops cleanly."""
    command = [sys.executable, "-m", "fastinput.profiler.viewer_server", "view", str(trace), "--no-browser"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = next((line.strip() for line in proc.stdout if line.startswith("http://")), None)
        assert url is not None, f"fastinput-trace printed no URL: {proc.stderr.read()}"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/index\.html\?trace=/trace\.json", url)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    trace = trace_samples.pipeline_trace()
    return trace, trace_samples.write_trace(tmp_path_factory.mktemp("traces") / "pipeline.json", trace)


@pytest.fixture(scope="module")
def pipeline_url(pipeline: Sample) -> Iterator[str]:
    with viewer_command(pipeline[1]) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def open_viewer(browser: Any, url: str, timeout_ms: int = 30_000) -> Iterator[Any]:
    """A page showing ``url``, loaded and drawn; fails if the page logged any console error."""
    page = browser.new_page(viewport={"width": 1400, "height": 820})
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    if "?trace=" in url:
        page.wait_for_function(f"{HOOK}.loaded || {HOOK}.error !== null", timeout=timeout_ms)
        assert page.evaluate(f"{HOOK}.error") is None
        page.wait_for_function(f"{HOOK}.frameCount > 0")
    yield page
    page.close()
    assert errors == [], f"console errors: {errors}"


@pytest.fixture
def page(browser: Any, pipeline_url: str) -> Iterator[Any]:
    with open_viewer(browser, pipeline_url) as page:
        yield page


def view(page: Any) -> tuple[float, float]:
    return tuple(page.evaluate(f"[{HOOK}.state.viewStart, {HOOK}.state.viewEnd]"))


def press(page: Any, key: str) -> None:
    """Presses a key that changes the view and waits until the viewer has drawn the change.

    A frame still pending from an earlier change (a click) is let through first: otherwise it could be drawn
    between reading the frame count and the key's handler, and pass for the key's frame."""
    page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    frames = page.evaluate(f"{HOOK}.frameCount")
    page.keyboard.press(key)
    page.wait_for_function(f"{HOOK}.frameCount > {frames}")


def events_named(trace: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] == name]


def click_event(page: Any, event: dict[str, Any], depth: int) -> None:
    """Clicks the middle of ``event``'s bar (lane ``depth`` of its thread)."""
    point = page.evaluate(
        f"{HOOK}.clientPoint({event['ts'] + event['dur'] / 2}, {event['pid']}, {event['tid']}, {depth})"
    )
    page.mouse.click(point["x"], point["y"])


def test_command_serves_the_page_and_only_the_trace(pipeline: Sample) -> None:
    with viewer_command(pipeline[1]) as url:
        root = url.split("/index.html")[0]
        with urllib.request.urlopen(url) as response:
            assert "fastinput trace viewer" in response.read().decode()
        with urllib.request.urlopen(root + "/trace.json") as response:
            assert response.read() == pipeline[1].read_bytes()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(root + "/../../pyproject.toml")


def test_loads_the_trace(page: Any, pipeline: Sample) -> None:
    trace = pipeline[0]
    count = trace_samples.event_count(trace)
    assert page.evaluate(f"{HOOK}.eventCount") == count
    assert f"{count:,} events" in page.text_content("#status")
    assert "7 threads" in page.text_content("#status")
    start, end = view(page)
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert start <= min(e["ts"] for e in slices) and end >= max(e["ts"] + e["dur"] for e in slices)
    frames = page.evaluate(f"{HOOK}.frameCount")
    page.mouse.move(700, 300)  # hovering shows a tooltip but changes nothing drawn
    page.wait_for_timeout(300)
    assert page.evaluate(f"{HOOK}.frameCount") == frames, "redrew with nothing changed"


def test_w_zooms_in_and_s_zooms_out_around_the_centre(page: Any) -> None:
    start, end = view(page)
    press(page, "w")
    zoomed = view(page)
    assert zoomed[1] - zoomed[0] < end - start
    assert sum(zoomed) / 2 == pytest.approx((start + end) / 2)
    press(page, "s")
    press(page, "s")
    assert view(page)[1] - view(page)[0] > zoomed[1] - zoomed[0]


def test_w_zooms_around_the_mouse(page: Any) -> None:
    box = page.locator("#canvas").bounding_box()
    x = box["x"] + box["width"] * 0.8
    page.mouse.move(x, box["y"] + 100)
    start, end = view(page)
    left, right = (page.evaluate(f"{HOOK}.clientPoint({t}, 1, 1, 0).x") for t in (start, end))
    anchor = start + (x - left) / (right - left) * (end - start)
    press(page, "w")
    assert view(page)[1] - view(page)[0] < end - start
    assert page.evaluate(f"{HOOK}.clientPoint({anchor}, 1, 1, 0).x") == pytest.approx(x, abs=0.5)


def test_a_and_d_pan(page: Any) -> None:
    press(page, "w")
    press(page, "w")
    start, end = view(page)
    press(page, "d")
    right = view(page)
    assert right[0] > start and right[1] - right[0] == pytest.approx(end - start)
    press(page, "a")
    press(page, "a")
    assert view(page)[0] < start


def test_drag_pans_and_wheel_zooms(page: Any) -> None:
    press(page, "w")
    start, end = view(page)
    box = page.locator("#canvas").bounding_box()
    x, y = box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 100, y, steps=5)
    page.mouse.up()
    assert view(page)[0] < start
    span = view(page)[1] - view(page)[0]
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"{HOOK}.state.viewEnd - {HOOK}.state.viewStart < {span}")


@pytest.mark.parametrize(("name", "depth"), [(trace_samples.STEP, 0), ("model_step", 1)])
def test_click_selects_the_event_and_shows_its_details(
    page: Any, pipeline: Sample, name: str, depth: int
) -> None:
    event = events_named(pipeline[0], name)[2]
    click_event(page, event, depth)
    selected = page.evaluate(f"{HOOK}.state.selected")
    assert selected["name"] == name and selected["tid"] == event["tid"]
    assert selected["ts"] == pytest.approx(event["ts"]) and selected["dur"] == pytest.approx(event["dur"])
    assert page.text_content("#details-name") == name
    details = page.text_content("#details")
    assert "consumer (training loop)" in details
    if name == trace_samples.STEP:
        assert '"step": 2' in page.text_content("#details-args")


def test_f_focuses_the_selection(page: Any, pipeline: Sample) -> None:
    step = events_named(pipeline[0], trace_samples.STEP)[5]
    click_event(page, step, 0)
    press(page, "f")
    start, end = view(page)
    margin = step["dur"] * 0.1
    assert abs(start - step["ts"]) <= margin and abs(end - (step["ts"] + step["dur"])) <= margin


def test_m_marks_the_selection_and_shows_its_duration(page: Any, pipeline: Sample) -> None:
    step = events_named(pipeline[0], trace_samples.STEP)[3]
    click_event(page, step, 0)
    press(page, "m")
    marked = page.evaluate(f"{HOOK}.state.marked")
    assert marked["start"] == pytest.approx(step["ts"]) and marked["end"] == pytest.approx(
        step["ts"] + step["dur"]
    )
    shown = re.fullmatch(r"Marked: (\d+\.\d+) ms", page.text_content("#mark-info"))
    assert shown and float(shown.group(1)) == pytest.approx(step["dur"] / 1000, abs=0.01)
    press(page, "m")
    assert page.evaluate(f"{HOOK}.state.marked") is None and page.text_content("#mark-info") == ""


def test_search_counts_matches_and_enter_steps_through_them_in_time_order(
    page: Any, pipeline: Sample
) -> None:
    matches = sorted(
        e["ts"] for e in pipeline[0]["traceEvents"] if e["ph"] == "X" and "decode" in e["name"].lower()
    )
    page.keyboard.press("/")
    page.keyboard.type("DECODE")
    page.keyboard.press("Enter")
    assert page.text_content("#search-count") == f"{len(matches):,} matches"
    selected = page.evaluate(f"{HOOK}.state.selected")
    assert "decode" in selected["name"] and selected["ts"] == pytest.approx(matches[0])
    start, end = view(page)
    assert start <= selected["ts"] and selected["ts"] + selected["dur"] <= end
    page.keyboard.press("Enter")
    assert page.evaluate(f"{HOOK}.state.selected.ts") == pytest.approx(matches[1])
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    assert page.evaluate(f"{HOOK}.state.selected.ts") == pytest.approx(matches[-1])  # wraps around


def test_question_mark_toggles_the_help(page: Any) -> None:
    assert not page.is_visible("#help")
    page.keyboard.press("?")
    assert page.is_visible("#help") and "zoom in" in page.text_content("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")


def test_opens_gzipped_traces_from_the_file_picker_and_unterminated_ones_by_drop(
    browser: Any, pipeline_url: str, pipeline: Sample, tmp_path: pathlib.Path
) -> None:
    gzipped = tmp_path / "pipeline.json.gz"
    gzipped.write_bytes(gzip.compress(pipeline[1].read_bytes()))
    with open_viewer(browser, pipeline_url.split("?")[0]) as page:
        assert page.is_visible("#empty")
        page.set_input_files("#file-input", str(gzipped))
        page.wait_for_function(f"{HOOK}.eventCount === {trace_samples.event_count(pipeline[0])}")
        assert "pipeline.json.gz" in page.text_content("#status") and not page.is_visible("#empty")
        # A bare event array whose writer stopped before the closing bracket, as chrome://tracing accepts.
        page.evaluate("""() => {
            const text = '[{"ph": "X", "name": "dropped", "ts": 0, "dur": 5, "pid": 1, "tid": 1},';
            const data = new DataTransfer();
            data.items.add(new File([text], "dropped.json", {type: "application/json"}));
            window.dispatchEvent(new DragEvent("drop", {dataTransfer: data, cancelable: true}));
        }""")
        page.wait_for_function(f"{HOOK}.eventCount === 1")
        assert "dropped.json" in page.text_content("#status")


def test_screenshot_artifact(page: Any, pipeline: Sample) -> None:
    """Zoomed in, one step selected and marked, a search active: saved for a person to look at."""
    step = events_named(pipeline[0], trace_samples.STEP)[10]
    click_event(page, step, 0)
    press(page, "f")
    for _ in range(3):
        press(page, "s")
    press(page, "m")
    page.fill("#search", "decode")
    page.wait_for_function(f"{HOOK}.state.matchCount > 0")
    page.mouse.move(0, 0)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "trace_viewer.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_million_events_load_and_redraw_merged(browser: Any, tmp_path: pathlib.Path) -> None:
    count = trace_samples.write_dense_trace(tmp_path / "dense.json")
    assert count >= 1_000_000
    with (
        viewer_command(tmp_path / "dense.json") as url,
        open_viewer(browser, url, timeout_ms=120_000) as page,
    ):
        assert page.evaluate(f"{HOOK}.eventCount") == count
        # Zoomed out, sub-pixel slices merge into blocks: far fewer rectangles than events.
        assert 0 < page.evaluate(f"{HOOK}.drawStats.rects") < 20_000
        spans = [view(page)[1] - view(page)[0]]
        for key in ("w", "w", "w", "d", "s"):
            press(page, key)
            spans.append(view(page)[1] - view(page)[0])
        assert spans[3] < spans[0] and spans[5] > spans[4]
        point = page.evaluate(
            f"{HOOK}.clientPoint(({HOOK}.state.viewStart + {HOOK}.state.viewEnd) / 2, 1, 1, 0)"
        )
        page.mouse.click(point["x"], point["y"])
        assert page.evaluate(f"{HOOK}.state.selected.name") == "map(decode, num_parallel_calls=8)"
        press(page, "f")
        assert page.evaluate(f"{HOOK}.drawStats.labels") > 0  # zoomed in far enough to read names
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "trace_viewer_1m.png"))
