"""RESULTS.md from JSON: other benchmarks' documents rendered generically."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastinput_bench.results import generic_tables, render

FIGURES = Path(__file__).resolve().parents[2] / "fastinput_bench" / "figures"


def test_scalars_become_a_key_value_table_and_records_tables():
    lines = generic_tables({"rows": 400000, "ratio": 12.345, "machine": {"cores": 2},
                            "runs": [{"name": "a", "rate": 1500.0}, {"name": "b", "rate": 0.5, "note": "x|y"}],
                            "results": {"images": {"ratio": 0.97}, "tabular": {"ratio": 1.02}}})
    text = "\n".join(lines)
    assert "| rows | 400,000 |" in text and "| ratio | 12.3 |" in text and "| machine.cores | 2 |" in text
    assert "| name | rate | note |" in text and "| a | 1,500 | - |" in text and "| b | 0.5 | x\\|y |" in text
    assert "| name | ratio |" in text and "| images | 0.97 |" in text


def test_render_without_cli_documents_states_this_machine_and_keeps_other_sections_in_order():
    text = render([("csv_read", {"ratio": 14.0}), ("core_map", {"ratio_vs_graph_map": 2.1})])
    assert "Machine (where this report was generated): " in text and " cores, " in text
    assert "## fastinput-bench" not in text
    assert text.index("### csv_read") < text.index("### core_map")


def test_bench_rates_show_the_spread_as_a_share_of_the_median():
    text = render([("images", json.loads((FIGURES / "images_readme.json").read_text()))])
    assert "Rates: median (min-max over the timed intervals, and max - min as a share of the median)." in text
    row = next(line for line in text.splitlines() if line.startswith("| images"))
    rates = re.findall(r"([\d,]+) images/s \(([\d,]+)-([\d,]+), (\d+)%\)", row)
    assert len(rates) == 3  # fastinput's, tf.data's and the decode kernel's
    for rate, low, high, share in rates:
        low, high, rate = (float(v.replace(",", "")) for v in (low, high, rate))
        assert abs(int(share) - (high - low) / rate * 100) <= 1  # the figures shown are rounded


def test_bench_rows_give_the_share_of_the_decode_kernel_where_it_was_timed():
    document = json.loads((FIGURES / "images_readme.json").read_text())
    text = render([("images", document)])
    row = next(line for line in text.splitlines() if line.startswith("| images"))
    assert f"| {document['kernel_share']:.1%} of " in row
    assert "--kernel-limit" in text
    del document["results"]["decode kernel"], document["kernel_share"], document["config"]["kernel_limit"]
    row = next(line for line in render([("images", document)]).splitlines() if line.startswith("| images"))
    assert "of " not in row.split("|")[7] and "--kernel-limit" not in render([("images", document)])


def test_bench_rows_say_what_the_busy_processes_got_where_they_ran():
    document = json.loads((FIGURES / "images_readme.json").read_text())
    row = next(line for line in render([("images", document)]).splitlines() if line.startswith("| images"))
    assert row.rstrip().endswith("| - |")  # no busy cores (or a file from before they were measured)
    document["config"]["busy_cores"] = 1
    document["results"]["fastinput"]["beside_share"] = 0.58
    document["results"]["tf.data"]["beside_share"] = 0.626
    row = next(line for line in render([("images", document)]).splitlines() if line.startswith("| images"))
    assert row.rstrip().endswith("| 58% / 63% |")
