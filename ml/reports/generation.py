"""The requests the report language model answers, built in one place for every caller.

`summarize` writes a book-day's risk summary from its record (the record's prompt and slot
values, ml.synthetic.risk_summary); `generate` continues a free prompt, for exploration: its
figures are the model's own, not a record's. The command line, the Python client and the
benchmark all build their requests here, with the product's default sampling.

A summary is a sample, and a sampler now and then writes a sentence the record does not hold
(1-2 drafts in 200, BENCHMARKS.md). A risk summary that states a breach the book did not have is
worse than none, so every summary is held against its record by the benchmark's own parser
(ml.synthetic.summary_check) before anyone sees it; a draft that fails is written again, and a
book-day whose drafts all fail is refused with what was wrong, never returned.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from ml.synthetic.risk_summary import RiskRecord

SUMMARIZE_SIGNATURE = "summarize"
GENERATE_SIGNATURE = "generate"
# Lower than for free text: in three trainings 0.5 left 4-7 of 200 summaries off the record's
# phrasings where 0.7 left 7-12 (BENCHMARKS.md, "Report language model").
DEFAULT_TEMPERATURE = 0.5
DEFAULT_TOP_K = 20
# A summary is about 200 tokens (digits are not in it: figures are slots); room to spare.
SUMMARY_MAX_NEW_TOKENS = 320
PROMPT_MAX_NEW_TOKENS = 300
# Drafts written before a book-day's summary is refused. A first draft passes 198-200 times in
# 200, so with independent samples four leave about one book-day in 10^8 unanswered.
SUMMARY_DRAFTS = 4
UNCHECKED_NOTE = ("unchecked draft, for inspecting the model: not held against its risk record, "
                  "so it may state what the record does not")
EXPLORATION_NOTE = ("free prompt, for exploration: not conditioned on a risk record, so its "
                    "figures are the model's own and not facts")


def check_sampling(max_new_tokens: int, temperature: float, top_k: int) -> None:
    """ValueError naming the bad setting."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise ValueError(f"top_k must be an integer (0 = the whole vocabulary), got {top_k!r}")


class SummaryRejected(RuntimeError):
    """No draft of a book-day's summary stated its record."""


@dataclasses.dataclass(frozen=True)
class CheckedSummary:
    """A record's summary after the check: the text to show, or why there is none."""

    record: "RiskRecord"
    text: Optional[str]             # the first draft that passed; None when none did
    drafts: int                     # drafts written for this record
    first_draft: str                # the model's first draft, passed or not (to measure it)
    problems: Tuple[str, ...] = ()  # what the last rejected draft got wrong, when none passed


def summary_request(record: "RiskRecord", max_new_tokens: Optional[int] = None,
                    temperature: Optional[float] = None, top_k: Optional[int] = None) -> Dict:
    """Inputs of `summarize` for one record, as numpy arrays."""
    return summaries_request([record], max_new_tokens, temperature, top_k)


def summaries_request(records: Sequence["RiskRecord"], max_new_tokens: Optional[int] = None,
                      temperature: Optional[float] = None, top_k: Optional[int] = None) -> Dict:
    """Inputs of `summarize` for a batch of records, as numpy arrays."""
    settings = _settings(max_new_tokens, temperature, top_k, SUMMARY_MAX_NEW_TOKENS)
    return {"prompt": np.array([r.prompt().encode("utf-8") for r in records], dtype=object),
            "slot_values": np.array([[v.encode("utf-8") for v in r.slot_values()]
                                     for r in records], dtype=object),
            **settings}


def checked_summaries(summarize: Callable[[Dict], Dict], records: Sequence["RiskRecord"],
                      max_new_tokens: Optional[int] = None, temperature: Optional[float] = None,
                      top_k: Optional[int] = None,
                      drafts: int = SUMMARY_DRAFTS) -> List[CheckedSummary]:
    """Summaries of the records, each checked against its record and redrafted until it passes
    or `drafts` are spent. `summarize` runs the `summarize` signature on a batch of inputs
    (in-process, over REST or gRPC) and returns its outputs."""
    from ml.synthetic.summary_check import check_summary

    if isinstance(drafts, bool) or not isinstance(drafts, int) or drafts < 1:
        raise ValueError(f"drafts must be an integer >= 1, got {drafts!r}")
    settings = _settings(max_new_tokens, temperature, top_k, SUMMARY_MAX_NEW_TOKENS)
    if float(settings["temperature"]) == 0.0:
        drafts = 1      # greedy decoding writes the same draft every time
    first: Dict[int, str] = {}
    passed: Dict[int, Tuple[str, int]] = {}
    problems: Dict[int, Tuple[str, ...]] = {}
    pending = list(range(len(records)))
    for draft in range(1, drafts + 1):
        if not pending:
            break
        outputs = summarize(summaries_request([records[i] for i in pending], max_new_tokens,
                                              temperature, top_k))
        texts = output_texts(outputs)
        if len(texts) != len(pending):
            raise RuntimeError(f"the model answered {len(texts)} texts for {len(pending)} records")
        still = []
        for index, text in zip(pending, texts):
            first.setdefault(index, text)
            check = check_summary(text, records[index])
            if check.factual and check.structured and check.consistent:
                passed[index] = (text, draft)
            else:
                problems[index] = check.problems or ("not a complete summary",)
                still.append(index)
        pending = still
    return [CheckedSummary(record=record, text=passed[i][0], drafts=passed[i][1],
                           first_draft=first[i]) if i in passed else
            CheckedSummary(record=record, text=None, drafts=drafts, first_draft=first[i],
                           problems=problems[i])
            for i, record in enumerate(records)]


def unchecked_summary(summarize: Callable[[Dict], Dict], record: "RiskRecord",
                      max_new_tokens: Optional[int] = None, temperature: Optional[float] = None,
                      top_k: Optional[int] = None) -> str:
    """The model's first draft of a record's summary as it wrote it, not checked: to see what
    the model does (UNCHECKED_NOTE says so wherever it is shown)."""
    return output_text(summarize(summary_request(record, max_new_tokens, temperature, top_k)))


def checked_summary(summarize: Callable[[Dict], Dict], record: "RiskRecord",
                    max_new_tokens: Optional[int] = None, temperature: Optional[float] = None,
                    top_k: Optional[int] = None, drafts: int = SUMMARY_DRAFTS) -> CheckedSummary:
    """One record's checked summary; SummaryRejected naming the book-day and what the last
    draft got wrong when none passed."""
    result, = checked_summaries(summarize, [record], max_new_tokens, temperature, top_k, drafts)
    if result.text is None:
        raise SummaryRejected(
            f"no summary of {record.book} on {record.report_date} stated its risk record in "
            f"{result.drafts} draft(s), so none is shown; the last draft: "
            + "; ".join(result.problems[:3]))
    return result


def prompt_request(prompt: str, max_new_tokens: Optional[int] = None,
                   temperature: Optional[float] = None, top_k: Optional[int] = None) -> Dict:
    """Inputs of `generate` for one free prompt, as numpy arrays."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    settings = _settings(max_new_tokens, temperature, top_k, PROMPT_MAX_NEW_TOKENS)
    return {"prompt": np.array([prompt.encode("utf-8")], dtype=object), **settings}


def _settings(max_new_tokens, temperature, top_k, default_tokens: int) -> Dict:
    max_new_tokens = default_tokens if max_new_tokens is None else max_new_tokens
    temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
    top_k = DEFAULT_TOP_K if top_k is None else top_k
    check_sampling(max_new_tokens, temperature, top_k)
    return {"max_new_tokens": np.array(int(max_new_tokens), np.int32),
            "temperature": np.array(float(temperature), np.float32),
            "top_k": np.array(int(top_k), np.int32)}


def output_texts(outputs: Dict) -> List[str]:
    """The texts of an answer, one a request row."""
    return [text.decode("utf-8") if isinstance(text, bytes) else str(text)
            for text in np.asarray(outputs["text"]).reshape(-1)]


def output_text(outputs: Dict) -> str:
    """The one text of a single-request answer."""
    return output_texts(outputs)[0]
