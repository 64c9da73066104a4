"""A book-day's risk record, looked up from the report pipeline's history in ML Metadata.

The report language model's pipeline ingests one span (a week) of the reports dataset per run
and records on each Examples artifact the generator settings that made it. A span is a pure
function of those settings, so the risk reports of any day it covers are regenerated exactly
(as monitoring regenerates outcomes) instead of being copied into the home. Only days of
ingested spans are answered: a summary is about books the platform has seen.
"""
from __future__ import annotations

import datetime as dt
from typing import Dict, List, Tuple

from ml.core import metadata, registry
from ml.synthetic.risk_summary import RiskRecord, risk_records
from ml.synthetic.spans import SpanRequest

DATE_FORMAT = "%Y-%m-%d"


def parse_report_date(value: str) -> str:
    """A report date as YYYY-MM-DD; ValueError naming the value otherwise."""
    try:
        return dt.datetime.strptime(str(value), DATE_FORMAT).strftime(DATE_FORMAT)
    except ValueError:
        raise ValueError(f"date must be YYYY-MM-DD, got {value!r}") from None


class RiskRecordSource:
    """The risk records of the spans a home's report pipeline ingested (regenerated once per
    span and kept)."""

    def __init__(self, home, pipeline_name: str = registry.REPORT_LM.pipeline_name):
        self.home = home
        self.pipeline_name = pipeline_name
        self._spans: Dict[int, SpanRequest] = {}
        self._records: Dict[int, List[RiskRecord]] = {}
        self._loaded = False

    def _load_spans(self) -> None:
        if self._loaded:
            return
        store = metadata.existing_store(self.home)
        settings = metadata.ingested_span_settings(store, self.pipeline_name)
        self._spans = {span: SpanRequest.from_properties("reports", span, recorded)
                       for span, recorded in settings.items() if recorded.get("records_per_span")}
        self._loaded = True

    def covered(self) -> List[Tuple[int, str, str]]:
        """(span, first day, last day) of every ingested span."""
        self._load_spans()
        return [(span, *(day.strftime(DATE_FORMAT) for day in request.window()))
                for span, request in self._spans.items()]

    def _span_of(self, date: str) -> int:
        day = dt.datetime.strptime(date, DATE_FORMAT)
        for span, request in self._spans.items():
            first, last = request.window()
            if first <= day <= last:
                return span
        covered = ", ".join(f"{first}..{last}" for _, first, last in self.covered()) or "none"
        raise LookupError(f"no risk report on {date}: the report pipeline under {self.home.root} "
                          f"has ingested no span covering it (spans cover: {covered})")

    def span_records(self, span: int) -> List[RiskRecord]:
        if span not in self._records:
            from ml.synthetic.generator import SyntheticETRMDataGenerator

            generator = SyntheticETRMDataGenerator(self._spans[span].generator_config())
            self._records[span] = risk_records(generator.generate_risk_reports())
        return self._records[span]

    def record(self, book: str, date: str) -> RiskRecord:
        """The record of `book` on `date`; LookupError naming what is missing."""
        date = parse_report_date(date)
        if not isinstance(book, str) or not book.strip():
            raise ValueError("book must be a non-empty book name, e.g. FLOW_TRADING")
        self._load_spans()
        if not self._spans:
            raise LookupError(f"the report pipeline under {self.home.root} has ingested no span: "
                              "run `python run_local.py --model lm` first")
        records = self.span_records(self._span_of(date))
        books = sorted({r.book for r in records})
        if book not in books:
            raise LookupError(f"unknown book {book!r}; books: {', '.join(books)}")
        for record in records:
            if record.book == book and record.report_date == date:
                return record
        days = sorted({r.report_date for r in records if r.book == book})
        raise LookupError(f"book {book} has no risk report on {date} (not a trading day); its "
                          f"reports that week: {', '.join(days)}")
