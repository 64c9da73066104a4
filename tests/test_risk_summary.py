"""Risk records and the summary checker: a record's prompt and slots, the move since the
previous report, and the parser on hand-written right and wrong summaries."""
import re

import numpy as np
import pandas as pd
import pytest

from ml.core.report_slots import (BREACH_DECISIONS, DECISION_HOLDS, PREVIOUS_DECISIONS,
                                  SLOT_NAMES, fill_slots, slot_token, slot_values)
from ml.synthetic.risk_summary import (COUNTERFACTUAL_COPIES, RISK_SUMMARY_SECTIONS,
                                       conditioned_summaries,
                                       counterfactual_reports, record_of,
                                       render_risk_summaries, risk_records)
from ml.synthetic.summary_check import check_summary, number_sequence


def _report(i=1, date="2024-01-15", book="FLOW_TRADING", **overrides):
    row = {
        "report_id": f"RSK-{i}", "report_date": date, "book": book,
        "num_open_positions": 3, "net_exposure": 1_200_000.0, "gross_exposure": 2_500_000.0,
        "top_exposure_commodity": "power", "top_exposure_region": "north_america",
        "top_exposure": 900_000.0, "top2_exposure_commodity": "natural_gas",
        "top2_exposure_region": "europe", "top2_exposure": -700_000.0,
        "top3_exposure_commodity": "power", "top3_exposure_region": "uk",
        "top3_exposure": 300_000.0, "var_95": 80_000.0, "var_99": 120_000.0, "es_95": 100_000.0,
        "es_99": 150_000.0, "var_limit": 100_000.0, "exposure_limit": 5_000_000.0,
        "limit_utilisation": 0.8, "exposure_utilisation": 0.5, "var_limit_breach": 0,
        "exposure_limit_breach": 0, "breaches": 0}
    row.update(overrides)
    return row


def _record(previous=None, **overrides):
    frame = pd.DataFrame([_report(**overrides)])
    before = None if previous is None else next(pd.DataFrame([previous]).itertuples(index=False))
    return record_of(next(frame.itertuples(index=False)), before)


RIGHT = ("Daily risk summary for FLOW_TRADING on 2024-01-15. Portfolio overview: 3 open "
         "positions, net exposure USD 1,200,000, gross exposure USD 2,500,000; the largest "
         "exposure is North American power at USD 900,000, then European natural gas (USD -700,000) "
         "and UK power (USD 300,000). VaR: one-day historical VaR is USD "
         "80,000 at 95% and USD 120,000 at 99%; expected shortfall is USD 100,000 (95%) and USD "
         "150,000 (99%). Limits: VaR limit USD 100,000 with utilisation 80.0%; gross exposure "
         "limit USD 5,000,000 with utilisation 50.0%. Breaches: none. Changes: since 2024-01-12 "
         "the largest move is 95% VaR, up USD 30,000 (60.0%) to USD 80,000.")
PREVIOUS = _report(0, date="2024-01-12", var_95=50_000.0, var_99=110_000.0, es_95=95_000.0,
                   es_99=140_000.0, gross_exposure=2_400_000.0)


def test_the_move_is_the_largest_relative_change_since_the_books_previous_report():
    record = _record(PREVIOUS)
    assert record.move_metric == "var_95" and record.move_up
    assert (record.values["move_by"], record.values["move_pct"], record.values["move_to"],
            record.values["previous_date"]) == ("30,000", "60.0%", "80,000", "2024-01-12")
    assert not _record().has_previous and _record().values["move_by"] == ""


def test_records_take_the_previous_report_of_the_same_book_in_date_order():
    reports = pd.DataFrame([
        _report(3, date="2024-01-16", var_95=40_000.0),
        _report(1, date="2024-01-15"),
        _report(2, date="2024-01-15", book="ORIGINATION", var_95=10_000.0),
        _report(4, date="2024-01-16", book="ORIGINATION", var_95=30_000.0)])
    first, second, other_first, other_second = risk_records(reports)
    assert not second.has_previous and not other_first.has_previous
    assert first.values["previous_date"] == "2024-01-15"
    assert first.move_metric == "var_95" and not first.move_up
    assert other_second.values["move_pct"] == "200.0%"


def test_the_prompt_states_the_facts_in_words_and_no_figure():
    record = _record(PREVIOUS, var_95=120_000.0, limit_utilisation=1.2, var_limit_breach=1,
                     breaches=1)
    prompt = record.prompt()
    assert prompt == ("Risk record: positions in three or more markets; breaches: VaR limit; "
                      "previous report: yes. Summary:")
    flat = _record(gross_exposure=0.0, net_exposure=0.0)
    assert flat.prompt().startswith("Risk record: flat book; breaches: none; previous report: none")
    assert [n for n in number_sequence(prompt)] == []
    assert slot_values(record.values) == record.slot_values()
    assert len(record.slot_values()) == len(SLOT_NAMES)


def test_a_conditioned_summary_is_the_plain_one_with_slots_after_the_prompt():
    reports = pd.DataFrame([_report(i, date=f"2024-01-{15 + i // 2}",
                                    book=("FLOW_TRADING", "ORIGINATION")[i % 2],
                                    var_95=80_000.0 + 7_000 * i, es_95=100_000.0 + 9_000 * i,
                                    var_limit_breach=int(i == 3),
                                    limit_utilisation=1.3 if i == 3 else 0.8,
                                    breaches=int(i == 3)) for i in range(8)])
    plain = render_risk_summaries(reports, np.random.default_rng(4))
    conditioned = conditioned_summaries(reports, np.random.default_rng(4))
    for text, slotted, record in zip(plain, conditioned, risk_records(reports)):
        prompt, summary = slotted.split(" Summary: ", 1)
        assert f"{prompt} Summary:" == record.prompt()
        words = re.sub("\u27e8[a-z0-9_]+\u27e9", "", summary)
        assert not re.search(r"\d", words.replace("95%", "").replace("99%", ""))
        assert fill_slots(summary, record.slot_values()) == text
        check = check_summary(text, record)
        assert check.factual and check.structured and check.consistent, check.problems


@pytest.mark.parametrize("var_breach,exposure_breach,previous,breach_decision,previous_decision", [
    (0, 0, None, "breaches_none", "previous_none"),
    (1, 0, PREVIOUS, "breaches_var", "previous_yes"),
    (0, 1, None, "breaches_exposure", "previous_none"),
    (1, 1, PREVIOUS, "breaches_both", "previous_yes")])
def test_a_slotted_summary_carries_the_records_own_decision_after_each_deciding_heading(
        var_breach, exposure_breach, previous, breach_decision, previous_decision):
    record = _record(previous, var_limit_breach=var_breach, exposure_limit_breach=exposure_breach,
                     limit_utilisation=1.2 if var_breach else 0.8,
                     exposure_utilisation=1.1 if exposure_breach else 0.5,
                     breaches=var_breach + exposure_breach)
    held = [name for name in BREACH_DECISIONS + PREVIOUS_DECISIONS if record.values[name]]
    assert held == [breach_decision, previous_decision]
    assert record.values[breach_decision] == DECISION_HOLDS
    from ml.synthetic.risk_summary import write_summary
    slotted = write_summary(record, 0, [0] * 5, slotted=True)
    assert f"Breaches:{slot_token(breach_decision)} " in slotted
    assert f"Changes:{slot_token(previous_decision)} " in slotted
    assert sum(slotted.count(slot_token(name)) for name in BREACH_DECISIONS + PREVIOUS_DECISIONS
               ) == 2
    plain = write_summary(record, 0, [0] * 5)
    assert fill_slots(slotted, record.slot_values()) == plain, "a decision slot prints nothing"
    assert check_summary(plain, record).consistent


def test_counterfactual_copies_flip_one_breach_each_and_keep_their_figures_coherent():
    reports = pd.DataFrame([_report(i, exposure_limit_breach=int(i == 2),
                                    exposure_utilisation=1.1 if i == 2 else 0.5,
                                    breaches=int(i == 2)) for i in range(40)]
                           + [_report(99, gross_exposure=0.0, net_exposure=0.0)])
    tables = counterfactual_reports(reports, np.random.default_rng(0), copies=4)
    assert [len(table) for table in tables] == [40] * 4
    first, second = tables[0], tables[1]
    copies = pd.concat(tables, ignore_index=True)
    assert first["report_id"].str.endswith("-CF1").all()
    assert second["report_id"].str.endswith("-CF2").all() and tables[3]["report_id"].str.endswith("-CF4").all()
    assert (tables[2]["exposure_limit_breach"] == 1 - reports["exposure_limit_breach"][:40]).all()
    assert (first["exposure_limit_breach"] == 1 - reports["exposure_limit_breach"][:40]).all()
    assert (second["var_limit_breach"] == 1 - reports["var_limit_breach"][:40]).all()
    assert np.allclose(copies["limit_utilisation"], copies["var_95"] / copies["var_limit"])
    assert ((copies["limit_utilisation"] > 1) == copies["var_limit_breach"].astype(bool)).all()
    assert 8 < first["var_limit_breach"].sum() < 32 and 8 < second["exposure_limit_breach"].sum() < 32
    for record in risk_records(copies):
        assert ("exposure_limit_breach" in record.breached) == (
            record.figures["exposure_utilisation"] > 1.0)


def test_a_copys_previous_report_is_the_same_books_earlier_report_in_that_copy():
    reports = pd.DataFrame([_report(i, date=f"2024-01-{15 + i}", var_95=80_000.0 + 5_000 * i)
                            for i in range(3)])
    for table in counterfactual_reports(reports, np.random.default_rng(1)):
        records = risk_records(table)
        assert not records[0].has_previous
        assert [r.values["previous_date"] for r in records[1:]] == ["2024-01-15", "2024-01-16"]
        assert records[2].values["move_by"] == "5,000"


def test_training_texts_add_the_copies_and_the_dataset_texts_do_not():
    from ml.synthetic.generator import ETRMDataConfig, SyntheticETRMDataGenerator

    generator = SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=300, num_risk_reports=12))
    plain, training = generator.generate_text_records(), generator.generate_training_texts()
    summaries = training[training["kind"] == "risk_summary"]
    assert summaries["record_id"].str.contains("-CF").sum() == 12 * COUNTERFACTUAL_COPIES
    assert summaries["text"].str.startswith("Risk record: ").all()
    assert not plain["record_id"].str.contains("-CF").any()
    others = training[training["kind"] != "risk_summary"].reset_index(drop=True)
    assert others.equals(plain[plain["kind"] != "risk_summary"].reset_index(drop=True))


def test_a_right_summary_passes_every_check():
    check = check_summary(RIGHT, _record(PREVIOUS))
    assert (check.factual, check.structured, check.consistent) == (True, True, True)
    assert check.problems == () and check.stated["var_95"] == "80,000"


@pytest.mark.parametrize("wrong, problem", [
    (RIGHT.replace("USD 80,000 at 95%", "USD 81,000 at 95%"), "var_95 stated as '81,000'"),
    (RIGHT.replace("USD 100,000 (95%)", "USD 150,000 (95%)"), "es_95 stated as '150,000'"),
    (RIGHT.replace("North American power", "European power"), "top_region_adj stated as 'European'"),
    (RIGHT.replace("FLOW_TRADING", "PROP_TRADING"), "book stated as 'PROP_TRADING'"),
    (RIGHT.replace("95% VaR, up", "gross exposure, up"), "move_metric stated as 'gross exposure'"),
    (RIGHT.replace("Breaches: none.", "Breaches: none, 12 days in a row."), "not a phrasing"),
    (RIGHT.replace("utilisation 80.0%", "utilisation 80.0% (7 desks)"), "numbers not in the record: 7"),
])
def test_a_wrong_figure_or_a_foreign_number_is_not_factual(wrong, problem):
    check = check_summary(wrong, _record(PREVIOUS))
    assert not check.factual
    assert any(problem in found for found in check.problems), check.problems


def test_a_missing_or_misplaced_section_is_not_structured():
    missing = RIGHT.replace(" Limits: VaR limit USD 100,000 with utilisation 80.0%; gross exposure "
                            "limit USD 5,000,000 with utilisation 50.0%.", "")
    assert not check_summary(missing, _record(PREVIOUS)).structured
    head, changes = RIGHT.split(" Changes: ")
    swapped = head.replace(" Breaches: none.", f" Changes: {changes} Breaches: none.")
    assert not check_summary(swapped, _record(PREVIOUS)).structured
    assert RISK_SUMMARY_SECTIONS[-1] == "Changes"


def test_expected_shortfall_below_var_is_inconsistent():
    record = _record(PREVIOUS, es_95=70_000.0)
    text = RIGHT.replace("USD 100,000 (95%)", "USD 70,000 (95%)")
    check = check_summary(text, record)
    assert not check.consistent and any("es_95 70,000 is below var_95" in p for p in check.problems)


def test_a_breach_must_be_stated_exactly_where_utilisation_exceeds_its_limit():
    breached = _record(PREVIOUS, var_95=120_000.0, es_95=140_000.0, limit_utilisation=1.2,
                       var_limit_breach=1, breaches=1)
    omitted = (RIGHT.replace("80,000", "120,000").replace("80.0%", "120.0%")
               .replace("USD 100,000 (95%)", "USD 140,000 (95%)")
               .replace("up USD 30,000 (60.0%)", "up USD 70,000 (140.0%)"))
    check = check_summary(omitted, breached)
    assert not check.consistent and not check.factual
    assert any("var_limit_breach omitted" in p for p in check.problems), check.problems
    stated = omitted.replace(
        "Breaches: none.", "Breaches: VaR limit breached (USD 120,000 against USD 100,000); the "
        "CRO has been notified.")
    assert check_summary(stated, breached).consistent
    invented = RIGHT.replace(
        "Breaches: none.", "Breaches: VaR limit breached (USD 80,000 against USD 100,000); the "
        "CRO has been notified.")
    check = check_summary(invented, _record(PREVIOUS))
    assert not check.consistent and any("var_limit_breach stated" in p for p in check.problems)


def test_slot_names_are_checked():
    assert slot_token("var_95") == "\u27e8var_95\u27e9"
    with pytest.raises(KeyError, match="unknown record slot 'var95'"):
        slot_token("var95")
    with pytest.raises(ValueError, match="no value for slots"):
        slot_values({"book": "X"})


def test_a_record_names_the_markets_the_book_holds_and_leaves_the_others_empty():
    two = _record(PREVIOUS, top3_exposure_commodity="", top3_exposure_region="", top3_exposure=0.0)
    assert two.markets_named == 2 and two.prompt().startswith("Risk record: positions in two markets;")
    assert two.values["top2_commodity"] == "natural gas" and two.values["top3_exposure"] == ""
    assert (two.values["top3_commodity"], two.values["top3_region_adj"]) == ("", "")
    flat = _record(gross_exposure=0.0, net_exposure=0.0, top_exposure_commodity="",
                   top_exposure_region="", top2_exposure_commodity="", top2_exposure_region="",
                   top3_exposure_commodity="", top3_exposure_region="")
    assert flat.markets_named == 0 and flat.values["top_exposure"] == ""
    as_read_from_csv = _record(top3_exposure_commodity=float("nan"))
    assert as_read_from_csv.markets_named == 2


def test_a_summary_must_name_exactly_the_markets_of_its_record():
    two = _record(PREVIOUS, top3_exposure_commodity="", top3_exposure_region="", top3_exposure=0.0)
    check = check_summary(RIGHT, two)
    assert not check.factual
    assert any("names 3 largest exposures, the record has 2" in p for p in check.problems)
    right_for_two = RIGHT.replace(" and UK power (USD 300,000)", "")
    assert check_summary(right_for_two, two).factual
    check = check_summary(right_for_two, _record(PREVIOUS))
    assert not check.factual and any("names 2 largest" in p for p in check.problems)
    swapped = RIGHT.replace("European natural gas (USD -700,000)", "European natural gas (USD 300,000)")
    assert any("top2_exposure stated as '300,000'" in p for p in check_summary(
        swapped, _record(PREVIOUS)).problems)
