"""A book-day's summary is held against its record before anyone sees it: a draft the checker
rejects is written again, and a book-day whose drafts all fail is refused, naming what was
wrong. The model is replaced by scripted drafts; the records and the checker are the real ones."""
import numpy as np
import pytest

from ml.reports.generation import (SUMMARY_DRAFTS, SummaryRejected, checked_summaries,
                                   checked_summary)
from tests.test_risk_summary import PREVIOUS, RIGHT, _record

WRONG_VAR = RIGHT.replace("USD 80,000 at 95%", "USD 81,000 at 95%")
FALSE_BREACH = RIGHT.replace(
    "Breaches: none.",
    "Breaches: VaR limit breached (USD 80,000 against USD 100,000); the CRO has been notified.")


def _key(prompt, slot_values):
    """What tells two requests apart: the prompt words and the record's figures."""
    return prompt, tuple(slot_values)


class ScriptedModel:
    """Answers each record with its next scripted draft and records the batches it was sent."""

    def __init__(self, drafts_by_record):
        self.drafts = {_key(r.prompt(), r.slot_values()): list(drafts)
                       for r, drafts in drafts_by_record}
        self.batches = []

    def __call__(self, inputs):
        keys = [_key(p.decode("utf-8"), [v.decode("utf-8") for v in values])
                for p, values in zip(inputs["prompt"], inputs["slot_values"])]
        self.batches.append([slots[:3] for _, slots in keys])
        return {"text": np.array([self.drafts[key].pop(0).encode("utf-8") for key in keys],
                                 dtype=object)}


@pytest.fixture
def record():
    return _record(PREVIOUS)


def test_a_draft_that_states_its_record_is_returned_at_once(record):
    model = ScriptedModel([(record, [RIGHT])])
    summary = checked_summary(model, record)
    assert (summary.text, summary.drafts, summary.first_draft) == (RIGHT, 1, RIGHT)
    assert len(model.batches) == 1


@pytest.mark.parametrize("bad", [WRONG_VAR, FALSE_BREACH, RIGHT[:200]])
def test_a_rejected_draft_is_written_again(record, bad):
    model = ScriptedModel([(record, [bad, RIGHT])])
    summary = checked_summary(model, record)
    assert (summary.text, summary.drafts, summary.first_draft) == (RIGHT, 2, bad)


def test_only_the_rejected_records_of_a_batch_are_redrafted(record):
    other = _record(PREVIOUS, book="PROP_TRADING")
    right_other = RIGHT.replace("FLOW_TRADING", "PROP_TRADING")
    model = ScriptedModel([(record, [WRONG_VAR, RIGHT]), (other, [right_other])])
    first, second = checked_summaries(model, [record, other])
    mine, theirs = record.slot_values()[:3], other.slot_values()[:3]
    assert mine != theirs and model.batches == [[mine, theirs], [mine]]
    assert (first.text, first.drafts, second.text, second.drafts) == (RIGHT, 2, right_other, 1)


def test_a_book_day_whose_drafts_all_fail_is_refused_naming_what_was_wrong(record):
    model = ScriptedModel([(record, [WRONG_VAR] * SUMMARY_DRAFTS)])
    with pytest.raises(SummaryRejected, match=r"FLOW_TRADING on 2024-01-15 .* in 4 draft\(s\)"
                                              r".*var_95 stated as '81,000'"):
        checked_summary(model, record)
    assert len(model.batches) == SUMMARY_DRAFTS
    refused, = checked_summaries(ScriptedModel([(record, [FALSE_BREACH] * 2)]),
                                 [record], drafts=2)
    assert refused.text is None and refused.first_draft == FALSE_BREACH
    assert any("inconsistent: var_limit_breach stated" in problem for problem in refused.problems)


def test_greedy_decoding_is_not_redrafted_because_it_would_write_the_same(record):
    model = ScriptedModel([(record, [WRONG_VAR, RIGHT])])
    with pytest.raises(SummaryRejected, match=r"in 1 draft\(s\)"):
        checked_summary(model, record, temperature=0.0)
    assert len(model.batches) == 1


@pytest.mark.parametrize("drafts", [0, -1, 1.5, True])
def test_the_number_of_drafts_is_checked(record, drafts):
    with pytest.raises(ValueError, match="drafts must be an integer >= 1"):
        checked_summaries(ScriptedModel([]), [record], drafts=drafts)
