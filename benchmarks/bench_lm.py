"""Report LM: risk summaries written from their records, checked against them; perplexity
against a Kneser-Ney trigram on a later span; training and generation speed.

    .venv/bin/python -m benchmarks.bench_lm                 # the `make run` size
    .venv/bin/python -m benchmarks.bench_lm --records 3000 --preset tiny --summaries 20

The code paths are the pipeline's: span 0 of the reports dataset (the ETRMExampleGen
generator, --records trades per span, as `make run`; risk summaries conditioned on their
records) is the training data, with the Trainer's early-stopping holdout; the vocabulary is
Transform's rule; the model is trained by the Trainer's loop and exported with the served
signatures; the trigram is the evaluator's baseline, fitted on the same training tokens in the
same run. Perplexity is measured on span 1 (the following week). Summaries are written by the
exported `summarize` signature for the first --summaries book-days of spans 1, 2, ... and
checked against their records by ml.synthetic.summary_check. In the same run the same preset
is trained on the plain texts (summaries with their figures, no record) and prompted with each
book-day's opening sentence, so the gain of conditioning shows. Targets: at least 98 of 100
summaries factual, 95 of 100 with every section in order, all consistent, none repeating a
training summary's numbers; perplexity at most 0.8x the trigram's.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, List


from benchmarks.sections import heading, machine_line, progress, publish  # noqa: E402

TARGET_PERPLEXITY_RATIO = 0.8
TARGET_SECTION_SHARE = 0.95
TARGET_FACTUAL_SHARE = 0.98
RISK_SUMMARY = "risk_summary"
DEFAULT_SEED = 42


def train_and_export(texts: List[str], kinds: List[str], config, seed: int, workdir: str):
    import tensorflow as tf
    from absl import logging

    from models.lm import sequences, serving, training, vocabulary
    from models.lm.model import build_model
    from models.lm.tokenizer import Tokenizer

    held = sequences.in_validation_holdout(tf.constant(texts)).numpy()
    train = [(t, k) for t, k, h in zip(texts, kinds, held) if not h]
    validation = [(t, k) for t, k, h in zip(texts, kinds, held) if h]
    vocabulary_file = vocabulary.write_vocabulary(
        vocabulary.build_vocabulary([t for t, _ in train], config.vocab_size),
        os.path.join(workdir, "vocabulary.txt"))
    tokenizer = Tokenizer(vocabulary_file)
    tf.keras.utils.set_random_seed(seed)
    model = build_model(config, tokenizer.vocabulary_size)

    def dataset(rows):
        return sequences.sequence_dataset(
            tf.data.Dataset.from_tensor_slices(([t for t, _ in rows], [k for _, k in rows])).batch(512),
            tokenizer, config.max_length).cache()

    logging.set_verbosity(logging.INFO)  # the training loop logs one line per epoch
    try:
        report = training.fit(model, dataset(train), dataset(validation), config, seed)
    finally:
        logging.set_verbosity(logging.WARNING)
    export_dir = os.path.join(workdir, "export")
    serving.export(model, tokenizer, config, export_dir, report)
    return config, tokenizer, report, export_dir


def generation_run(generate, tokenizer, prompts: List[str], max_new_tokens: int,
                   temperature: float, top_k: int):
    import tensorflow as tf

    started = time.perf_counter()
    outputs = generate(prompt=tf.constant(prompts), max_new_tokens=tf.constant(max_new_tokens, tf.int32),
                       temperature=tf.constant(temperature, tf.float32), top_k=tf.constant(top_k, tf.int32))
    seconds = time.perf_counter() - started
    texts = [text.decode("utf-8") for text in outputs["text"].numpy()]
    continuations = [text[len(prompt):] for text, prompt in zip(texts, prompts)]
    tokens = int(tokenizer.encode(tf.constant(continuations)).row_lengths().numpy().sum())
    return texts, tokens, seconds


def chosen_config(args):
    """The named preset with the --set (and --steps-per-epoch) overrides, for sizing presets."""
    from models.lm.config import ModelConfig, preset

    values = preset(args.preset).to_dict()
    values.update(args.overrides)
    return ModelConfig.from_dict(values)


def config_override(text: str):
    """NAME=VALUE of a ModelConfig field, the value read as a Python literal."""
    import ast

    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError) as error:
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be a Python literal") from error


def steps_override(text: str):
    """--steps-per-epoch N as the override ("steps_per_epoch", N)."""
    try:
        return "steps_per_epoch", int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps, got {text!r}") from error


def run(args, config) -> Dict:
    """Trains, measures and cleans up its working folder."""
    workdir = tempfile.mkdtemp(prefix="bench_lm_")
    try:
        return measure(args, config, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def span_parts(span: int, records: int, seed: int) -> Dict:
    """One span of the reports dataset: the texts the LM learns (summaries conditioned), the
    same texts as the dataset writes them (summaries with figures) and the risk records."""
    from ml.synthetic import spans
    from ml.synthetic.generator import SyntheticETRMDataGenerator
    from ml.synthetic.risk_summary import risk_records

    generator = SyntheticETRMDataGenerator(spans.SpanRequest(
        dataset="reports", span=span, records_per_span=records, seed=seed).generator_config())
    conditioned, plain = generator.generate_training_texts(), generator.generate_text_records()
    return {"texts": conditioned["text"].tolist(), "kinds": conditioned["kind"].tolist(),
            "plain_texts": plain["text"].tolist(), "plain_kinds": plain["kind"].tolist(),
            "records": risk_records(generator.generate_complete_dataset()["risk_reports"])}


def held_out_records(args) -> List:
    """args.summaries book-days of spans 1, 2, ... (all later than the training span)."""
    found, span = [], 1
    while len(found) < args.summaries:
        found += span_parts(span, args.records, args.seed)["records"]
        span += 1
    return found[:args.summaries]


def summarize_run(export_dir: str, records, config, args):
    """The product's summaries of the records through the exported `summarize` signature:
    each checked against its record and redrafted until it passes (ml.reports.generation)."""
    import tensorflow as tf

    from ml.reports import generation

    summarize = tf.saved_model.load(export_dir).signatures["summarize"]

    def run_batch(inputs):
        outputs = summarize(**{name: tf.constant(value) for name, value in inputs.items()})
        return {"text": outputs["text"].numpy()}

    started = time.perf_counter()
    results = generation.checked_summaries(run_batch, records, config.max_length,
                                           args.temperature, args.top_k)
    return results, time.perf_counter() - started


def free_prompt_run(export_dir: str, tokenizer, records, config, args) -> List[str]:
    """The unconditioned way: each record's opening sentence as a free prompt to `generate`."""
    import tensorflow as tf

    generate = tf.saved_model.load(export_dir).signatures["generate"]
    prompts = [f"Daily risk summary for {r.book} on {r.report_date}." for r in records]
    texts, _, _ = generation_run(generate, tokenizer, prompts, config.max_length,
                                 args.temperature, args.top_k)
    return texts


def recited(generated: List[str], training_texts: List[str]) -> int:
    """Generated summaries whose sequence of numbers is a training summary's."""
    from ml.synthetic.summary_check import number_sequence

    seen = {number_sequence(text) for text in training_texts}
    return sum(number_sequence(text) in seen for text in generated)


def checked(texts: List[str], records) -> Dict:
    """How many summaries pass each check, and the problems found, by kind (values elided)."""
    import collections
    import re

    from ml.synthetic.summary_check import check_summary

    checks = [check_summary(text, record) for text, record in zip(texts, records)]
    kinds = collections.Counter(
        re.sub(r"'[^']*'|-?\d[\d,.]*%?", "...", problem)[:90]
        for check in checks for problem in check.problems)
    return {name: sum(bool(getattr(c, name)) for c in checks)
            for name in ("factual", "structured", "consistent")} | {
        "problems": kinds.most_common(6)}


def measure(args, config, workdir: str) -> Dict:
    from components.lm_evaluator import evaluation
    from ml.synthetic.generator import RISK_SUMMARY_SECTIONS

    progress(f"generating span 0 and held-out spans ({args.records:,} trades each)")
    train_span = span_parts(0, args.records, args.seed)
    later = span_parts(1, args.records, args.seed)
    records = held_out_records(args)
    progress(f"training preset {args.preset!r} on {len(train_span['texts']):,} texts, "
             "summaries conditioned on their records (one line per epoch)")
    started = time.perf_counter()
    config, tokenizer, report, export_dir = train_and_export(
        train_span["texts"], train_span["kinds"], config, args.seed,
        os.path.join(workdir, "conditioned"))
    train_wall = time.perf_counter() - started

    progress("perplexity on span 1 and the Kneser-Ney trigram baseline")
    model = evaluation.ExportedLanguageModel(export_dir)
    candidate = evaluation.totals(model.per_text_statistics(later["texts"]), later["texts"])
    ngram = evaluation.fit_ngram_baseline(model, train_span["texts"], order=3)
    ngram_perplexity = ngram.perplexity(model.token_sequences(later["texts"]))

    progress(f"writing {len(records)} held-out summaries from their records")
    results, seconds = summarize_run(export_dir, records, config, args)
    first_drafts = checked([result.first_draft for result in results], records)
    generated = [result.text or "" for result in results]
    conditioned = checked(generated, records)
    training_summaries = [t for t, k in zip(train_span["plain_texts"], train_span["plain_kinds"])
                          if k == RISK_SUMMARY]

    if args.without_unconditioned:
        free, unconditioned = [""] * len(records), None
    else:
        progress("the unconditioned model: trained on the plain texts, prompted with the opening")
        plain_config, plain_tokenizer, _, plain_dir = train_and_export(
            train_span["plain_texts"], train_span["plain_kinds"], config, args.seed,
            os.path.join(workdir, "plain"))
        free = free_prompt_run(plain_dir, plain_tokenizer, records, plain_config, args)
        unconditioned = checked(free, records)
    epoch_speeds = [row["train_tokens_per_second"] for row in report["history"]]
    return {
        "config": config, "report": report, "train_wall_s": train_wall,
        "vocabulary_size": tokenizer.vocabulary_size,
        "train_texts": len(train_span["texts"]), "held_out_texts": len(later["texts"]),
        "perplexity": candidate.perplexity, "token_accuracy": candidate.token_accuracy,
        "ngram_perplexity": ngram_perplexity, "ratio": candidate.perplexity / ngram_perplexity,
        "train_tokens_per_s": statistics.median(epoch_speeds),
        "summaries": len(records), "summaries_per_s": len(records) / seconds,
        "conditioned": conditioned, "first_drafts": first_drafts,
        "refused": sum(result.text is None for result in results),
        "drafts": sum(result.drafts for result in results),
        "unconditioned": unconditioned,
        "recited": recited(generated, training_summaries),
        "recited_unconditioned": recited(free, training_summaries),
        "sections": RISK_SUMMARY_SECTIONS, "example": results[0].first_draft,
        "free_example": free[0],
    }


def _row(label: str, count: int, total: int, target: float) -> str:
    met = count >= target * total
    return (f"| {label} (target >= {target * total:.0f}/{total}) | {count}/{total} "
            f"({'met' if met else 'NOT met'}) |")


def _checked_rows(what: str, counts: Dict, total: int) -> List[str]:
    return [
        _row(f"{what}: every figure the record's, no other number", counts["factual"], total,
             TARGET_FACTUAL_SHARE),
        _row(f"{what}: every section in order", counts["structured"], total,
             TARGET_SECTION_SHARE),
        _row(f"{what}: consistent (ES >= VaR, breach stated iff utilisation > 100%)",
             counts["consistent"], total, 1.0)]


def render(args, result: Dict, machine: str) -> str:
    from ml.reports import generation

    config = result["config"]
    ratio_met = result["ratio"] <= TARGET_PERPLEXITY_RATIO
    total, ours, plain = result["summaries"], result["conditioned"], result["unconditioned"]
    first = result["first_drafts"]
    command = ("`.venv/bin/python -m benchmarks.bench_lm --records "
               f"{args.records} --preset {args.preset} --summaries {args.summaries}"
               + "".join(f" --set {name}={value!r}" for name, value in args.overrides)
               + (f" --seed {args.seed}" if args.seed != DEFAULT_SEED else "") + "`")
    return "\n".join([
        heading("Report language model"), "",
        f"- Command: {command}",
        f"- Machine: {machine}",
        f"- Model: preset `{args.preset}` ({config.num_layers} layers, embedding "
        f"{config.embedding_dim}, {config.num_heads} heads, hidden {config.hidden_dim}, "
        f"max_length {config.max_length}, batch {config.batch_size}, {config.epochs} epochs of "
        f"{config.steps_per_epoch or 'all'} steps); vocabulary {result['vocabulary_size']} tokens "
        f"(cap {config.vocab_size}). Trained on span 0 ({result['train_texts']} texts, one-in-ten "
        f"holdout for early stopping; risk summaries as (record prompt, slotted summary)); "
        f"perplexity on span 1 ({result['held_out_texts']} texts); summaries written for the "
        f"first {total} book-days of spans 1 onwards, each checked against its record by "
        f"`ml.synthetic.summary_check` (sections {', '.join(result['sections'])}).",
        "",
        "| figure | value |", "| --- | ---: |",
        f"| perplexity on span 1 | {result['perplexity']:.3f} |",
        f"| Kneser-Ney trigram perplexity (same tokens, same run) | {result['ngram_perplexity']:.3f} |",
        f"| ratio (target <= {TARGET_PERPLEXITY_RATIO}) | {result['ratio']:.3f} "
        f"({'met' if ratio_met else 'NOT met'}) |",
        f"| next-token accuracy on span 1 | {result['token_accuracy']:.3f} |",
        f"| training tokens/s (median of {len(result['report']['history'])} epochs) | "
        f"{result['train_tokens_per_s']:.0f} |",
        f"| training wall time incl. tokenization and export | {result['train_wall_s']:.0f} s |",
        *_checked_rows("the model's first drafts", first, total),
        *_checked_rows(f"summaries returned after the check (up to {generation.SUMMARY_DRAFTS} "
                       "drafts)", ours, total),
        f"| book-days refused: no draft stated the record | {result['refused']}/{total} |",
        f"| drafts written per book-day (mean) | {result['drafts'] / total:.3f} |",
        f"| conditioned summaries repeating a training summary's numbers (target 0) | "
        f"{result['recited']}/{total} |",
        *([f"| unconditioned model, free prompt: factual / every section / consistent | "
           f"{plain['factual']}/{total} / {plain['structured']}/{total} / "
           f"{plain['consistent']}/{total} |",
           f"| unconditioned model: summaries repeating a training summary's numbers | "
           f"{result['recited_unconditioned']}/{total} |"] if plain else []),
        f"| checked summaries written per second (batch of {total}, redrafts included) | "
        f"{result['summaries_per_s']:.2f} |",
        "",
        f"Sampling: temperature {args.temperature}, top_k {args.top_k} (the product's default). "
        "The unconditioned model is the same preset trained on span 0's texts as the dataset "
        "writes them, prompted with \"Daily risk summary for BOOK on DATE.\". "
        "A summary is returned only when `ml.synthetic.summary_check` finds it states its "
        "record, so the returned rows count the book-days answered; the first-draft rows are "
        f"the model on its own. First conditioned draft:", "", f"> {result['example']}",
        *(["", "The unconditioned model's for the same book-day:", "",
           f"> {result['free_example']}"] if plain else []),
        *(["", "Problems the checker found in the first drafts (count, kind):", ""]
          + [f"- {count} x {kind}" for kind, count in first["problems"]]
          if first["problems"] else []),
    ])


def main(argv=None) -> int:
    from ml.reports import generation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000, help="trades per span (make run: 20000)")
    parser.add_argument("--preset", default="run", help="ModelConfig preset (make run: run)")
    parser.add_argument("--steps-per-epoch", type=steps_override, dest="overrides",
                        action="append", default=[], metavar="N",
                        help="same as --set steps_per_epoch=N")
    parser.add_argument("--set", dest="overrides", type=config_override, action="append",
                        default=[], metavar="NAME=VALUE",
                        help="override a ModelConfig field of the preset (repeatable)")
    parser.add_argument("--summaries", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=generation.DEFAULT_TEMPERATURE,
                        help="sampling temperature (default: the product's, ml.reports.generation)")
    parser.add_argument("--top-k", type=int, default=generation.DEFAULT_TOP_K)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--without-unconditioned", action="store_true",
                        help="skip training the unconditioned comparison model (sizing runs)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    try:
        config = chosen_config(args)
    except ValueError as error:
        parser.error(str(error))
    machine = machine_line()
    from absl import logging

    logging.use_absl_handler()
    result = run(args, config)
    text = render(args, result, machine)
    publish(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
