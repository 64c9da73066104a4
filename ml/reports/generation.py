"""The requests the report language model answers, built in one place for every caller.

`summarize` writes a book-day's risk summary from its record (the record's prompt and slot
values, ml.synthetic.risk_summary); `generate` continues a free prompt, for exploration: its
figures are the model's own, not a record's. The command line, the Python client and the
benchmark all build their requests here, with the product's default sampling.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Optional

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


def summary_request(record: "RiskRecord", max_new_tokens: Optional[int] = None,
                    temperature: Optional[float] = None, top_k: Optional[int] = None) -> Dict:
    """Inputs of `summarize` for one record, as numpy arrays."""
    settings = _settings(max_new_tokens, temperature, top_k, SUMMARY_MAX_NEW_TOKENS)
    return {"prompt": np.array([record.prompt().encode("utf-8")], dtype=object),
            "slot_values": np.array([[v.encode("utf-8") for v in record.slot_values()]],
                                    dtype=object),
            **settings}


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


def output_text(outputs: Dict) -> str:
    """The one text of a single-request answer."""
    text = np.asarray(outputs["text"]).reshape(-1)[0]
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)
