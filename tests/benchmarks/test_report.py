"""What the CLI shows: the progress bar on a terminal only, and the results table with its ratio line."""

from __future__ import annotations

import dataclasses
import io

from fastinput_bench.measure import Measurement
from fastinput_bench.report import KERNEL, ProgressBar, results_table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_in_place_on_a_terminal_and_clears():
    stream = Terminal()
    bar = ProgressBar("fastinput", warmup=2, steps=8, unit="images", stream=stream)
    bar(1, None)
    bar(10, 1234.0)  # the last batch is always drawn
    bar.clear()
    drawn = stream.getvalue().split("\r")
    assert "[##" in drawn[1] and "1/10 batches  warming up" in drawn[1]
    assert "[" + "#" * 28 + "] 10/10 batches  1,234 images/s" in drawn[2]
    assert drawn[-1] == "" and drawn[-2].strip() == ""


def test_progress_bar_is_silent_off_a_terminal_or_when_quiet():
    for stream, enabled in ((io.StringIO(), True), (Terminal(), False)):
        bar = ProgressBar("tf.data", warmup=0, steps=3, unit="rows", stream=stream, enabled=enabled)
        bar(3, 10.0)
        bar.status("preparing ...")
        bar.clear()
        assert stream.getvalue() == ""


def measurement(rates: tuple[float, ...]) -> Measurement:
    return Measurement(examples=640, seconds=1.0, interval_rates=rates, cpu_utilization=0.5,
                       peak_memory_bytes=3 * 2**29)


def test_results_table_has_a_row_per_pipeline_and_the_ratio_of_medians():
    table = results_table("images", [("fastinput", measurement((900.0, 1000.0, 1300.0))),
                                     ("tf.data", measurement((400.0, 500.0, 800.0)))])
    lines = table.splitlines()
    assert lines[0].split() == ["pipeline", "images/s", "(median)", "spread", "(min-max,", "of", "median)", "CPU",
                                 "peak", "memory"]
    assert lines[2].split() == ["fastinput", "1,000", "900-1,300", "(40%)", "50%", "1.50", "GiB"]
    assert lines[3].split() == ["tf.data", "500", "400-800", "(80%)", "50%", "1.50", "GiB"]
    assert lines[4] == "fastinput / tf.data: 2.00x (images/s, medians)"
    assert "fastinput / tf.data" not in results_table("images", [("fastinput", measurement((1.0,)))])


def test_results_table_shows_what_the_busy_processes_got_only_where_they_ran():
    quiet = results_table("images", [("fastinput", measurement((1.0,))), ("tf.data", measurement((1.0,)))])
    assert "busy processes" not in quiet
    busy = dataclasses.replace(measurement((1.0,)), beside_share=0.583)
    table = results_table("images", [("fastinput", busy), ("tf.data", dataclasses.replace(busy, beside_share=None))])
    header, _, fast, tf = table.splitlines()[:4]
    assert header.rstrip().endswith("busy processes' work, of alone")
    assert fast.rstrip().endswith(" 58%") and tf.rstrip().endswith(" -")


def test_results_table_gives_fastinputs_share_of_the_decode_kernel_when_it_was_timed():
    table = results_table("images", [("fastinput", measurement((900.0, 1000.0))), ("tf.data", measurement((500.0,))),
                                     (KERNEL, measurement((1200.0, 1250.0, 1300.0)))])
    lines = table.splitlines()
    assert lines[4].split()[:3] == ["decode", "kernel", "1,250"]
    assert lines[5] == "fastinput / tf.data: 1.90x (images/s, medians)"
    assert lines[6] == ("fastinput / decode kernel: 76.0% (the share of the ceiling it reaches; images/s, medians)")
    assert "decode kernel:" not in results_table("images", [("fastinput", measurement((1.0,)))])
