"""RESULTS.md from JSON: other benchmarks' documents rendered generically."""

from __future__ import annotations

from fastinput_bench.results import generic_tables, render


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
