"""BENCHMARKS.md keeps one section per benchmark: a new run replaces the earlier one in place."""
from benchmarks.sections import replace_section


def test_a_new_run_replaces_its_own_section_and_keeps_the_others(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Alpha (2026-01-01 00:00 UTC)\n\nold alpha\n\n"
                    "### detail\n\nkept with alpha\n\n## Beta (2026-01-01 00:00 UTC)\n\nbeta\n\n"
                    "## Alpha (2026-01-02 00:00 UTC)\n\nolder duplicate\n")
    replace_section("## Alpha (2026-02-01 00:00 UTC)\n\nnew alpha\n", path)
    text = path.read_text()
    assert text == ("# Benchmarks\n\n## Alpha (2026-02-01 00:00 UTC)\n\nnew alpha\n\n"
                    "## Beta (2026-01-01 00:00 UTC)\n\nbeta\n")
    replace_section("## Gamma (2026-02-01 00:00 UTC)\n\ngamma", path)
    assert path.read_text().endswith("## Beta (2026-01-01 00:00 UTC)\n\nbeta\n\n"
                                     "## Gamma (2026-02-01 00:00 UTC)\n\ngamma\n")
