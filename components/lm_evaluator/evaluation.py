"""Plain functions behind LMEvaluator: read texts, score them with an exported LM, fit the
n-gram baseline, and collect the metrics. No TFX here, so each piece is tested on its own.

Models are measured through the functions saved in their SavedModel (`token_statistics`,
`tokenize`): what is evaluated is exactly what is served, tokenizer included.
"""
from __future__ import annotations

import dataclasses
import glob
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from models.lm.ngram import KneserNeyLanguageModel

SCORE_BATCH_SIZE = 64
TEXT_FEATURE = "text"
KIND_FEATURE = "kind"


@dataclasses.dataclass(frozen=True)
class ReportTexts:
    """The texts of one split and their kinds (trade_confirmation, risk_summary, ...)."""

    texts: List[str]
    kinds: List[str]


@dataclasses.dataclass(frozen=True)
class TokenTotals:
    """Summed next-token statistics of a model over a set of texts."""

    log_likelihood: float
    num_tokens: int
    num_correct: int
    num_characters: int

    @property
    def cross_entropy(self) -> float:
        """Mean negative log-likelihood per token, in nats."""
        return -self.log_likelihood / max(self.num_tokens, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(self.cross_entropy)

    @property
    def token_accuracy(self) -> float:
        return self.num_correct / max(self.num_tokens, 1)

    @property
    def bits_per_character(self) -> float:
        """Tokenizer-independent: compares models whose vocabularies differ."""
        return -self.log_likelihood / math.log(2) / max(self.num_characters, 1)

    def as_metrics(self) -> Dict[str, float]:
        return {"perplexity": self.perplexity, "cross_entropy": self.cross_entropy,
                "token_accuracy": self.token_accuracy,
                "bits_per_character": self.bits_per_character, "num_tokens": self.num_tokens}


def read_split_texts(*split_dirs: str) -> ReportTexts:
    """Texts and kinds of one split's folders (gzipped TFRecords of tf.Examples), in order: one
    folder per Examples artifact, several when a job trains on a rolling window of spans."""
    import tensorflow as tf

    files = []
    for split_dir in split_dirs:
        found = sorted(glob.glob(os.path.join(split_dir, "*")))
        if not found:
            raise ValueError(f"no files in split folder {split_dir}")
        files.extend(found)
    if not files:
        raise ValueError("no split folder given")
    texts, kinds = [], []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        texts.append(feature[TEXT_FEATURE].bytes_list.value[0].decode("utf-8"))
        kind = feature[KIND_FEATURE].bytes_list.value if KIND_FEATURE in feature else []
        kinds.append(kind[0].decode("utf-8") if kind else "")
    return ReportTexts(texts, kinds)


class ExportedLanguageModel:
    """An exported report LM loaded for evaluation."""

    def __init__(self, saved_model_dir: str):
        import tensorflow as tf

        self.path = saved_model_dir
        self._loaded = tf.saved_model.load(saved_model_dir)

    def _batches(self, texts: Sequence[str]):
        import tensorflow as tf

        for start in range(0, len(texts), SCORE_BATCH_SIZE):
            yield tf.constant(list(texts[start:start + SCORE_BATCH_SIZE]), tf.string)

    def per_text_statistics(self, texts: Sequence[str]) -> Dict[str, np.ndarray]:
        """log_likelihood, num_tokens, num_correct for every text."""
        parts: Dict[str, List[np.ndarray]] = {"log_likelihood": [], "num_tokens": [],
                                              "num_correct": []}
        for batch in self._batches(texts):
            outputs = self._loaded.token_statistics(batch)
            for name in parts:
                parts[name].append(outputs[name].numpy())
        return {name: (np.concatenate(values) if values else np.zeros(0))
                for name, values in parts.items()}

    def token_sequences(self, texts: Sequence[str]) -> List[np.ndarray]:
        """Token ids (with <s> and </s>, truncated as in training) of every text."""
        sequences: List[np.ndarray] = []
        for batch in self._batches(texts):
            outputs = self._loaded.tokenize(batch)
            ids, lengths = outputs["token_ids"].numpy(), outputs["lengths"].numpy()
            sequences.extend(row[:length] for row, length in zip(ids, lengths))
        return sequences

    @property
    def vocabulary_size(self) -> int:
        return int(self._loaded.vocabulary_size.numpy())


def totals(statistics: Dict[str, np.ndarray], texts: Sequence[str],
           mask: Optional[np.ndarray] = None) -> TokenTotals:
    """Sums per-text statistics, optionally over the texts selected by `mask`."""
    mask = np.ones(len(texts), bool) if mask is None else mask
    return TokenTotals(
        log_likelihood=float(statistics["log_likelihood"][mask].sum()),
        num_tokens=int(statistics["num_tokens"][mask].sum()),
        num_correct=int(statistics["num_correct"][mask].sum()),
        num_characters=int(sum(len(text) for text, keep in zip(texts, mask) if keep)))


def lm_training_texts(train_texts: Sequence[str]) -> List[str]:
    """The texts of the train split the LM learned from: the Trainer holds one hash bucket
    out for early stopping, so the baseline is fitted on exactly the same tokens."""
    import tensorflow as tf

    from models.lm.sequences import in_validation_holdout

    if not train_texts:
        return []
    held_out = in_validation_holdout(tf.constant(list(train_texts), tf.string)).numpy()
    return [text for text, held in zip(train_texts, held_out) if not held]


def fit_ngram_baseline(model: ExportedLanguageModel, train_texts: Sequence[str],
                       order: int) -> KneserNeyLanguageModel:
    """Kneser-Ney fitted on the LM's training texts as the candidate's tokenizer cuts them."""
    sequences = model.token_sequences(lm_training_texts(train_texts))
    return KneserNeyLanguageModel(order, model.vocabulary_size).fit(sequences)


def evaluate(candidate_dir: str, train: ReportTexts, evaluation: ReportTexts, ngram_order: int,
             baseline_dir: Optional[str] = None) -> Dict:
    """Metrics of the candidate, the n-gram baseline and (if any) the serving model, on the
    eval texts, overall and per kind of report."""
    candidate = ExportedLanguageModel(candidate_dir)
    statistics = candidate.per_text_statistics(evaluation.texts)
    overall = totals(statistics, evaluation.texts)
    kinds = np.array(evaluation.kinds)
    slices = {f"kind={kind}": totals(statistics, evaluation.texts, kinds == kind).as_metrics()
              for kind in sorted(set(evaluation.kinds)) if kind}
    ngram = fit_ngram_baseline(candidate, train.texts, ngram_order)
    ngram_log_probabilities = ngram.log_probabilities(candidate.token_sequences(evaluation.texts))
    metrics = {
        "candidate": {**overall.as_metrics(), "num_texts": len(evaluation.texts)},
        "slices": slices,
        "ngram": {"order": ngram_order, "training_tokens": ngram.training_tokens,
                  "perplexity": float(np.exp(-ngram_log_probabilities.mean())),
                  "num_tokens": int(len(ngram_log_probabilities))},
        "baseline": None,
    }
    metrics["perplexity_ratio_to_ngram"] = overall.perplexity / metrics["ngram"]["perplexity"]
    if baseline_dir:
        baseline = ExportedLanguageModel(baseline_dir)
        baseline_totals = totals(baseline.per_text_statistics(evaluation.texts), evaluation.texts)
        metrics["baseline"] = {**baseline_totals.as_metrics(), "model_dir": baseline_dir}
        metrics["perplexity_ratio_to_baseline"] = relative_perplexity(overall, baseline_totals)
    return metrics


def relative_perplexity(candidate: TokenTotals, baseline: TokenTotals) -> float:
    """exp((NLL_candidate - NLL_baseline) / candidate tokens) on the same texts.

    With a shared vocabulary (the warm-start case) this is exactly the ratio of perplexities;
    with different vocabularies it still compares the probability each model gives the texts.
    """
    return math.exp((baseline.log_likelihood - candidate.log_likelihood) / max(candidate.num_tokens, 1))
