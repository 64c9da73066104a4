"""Report LM: perplexity against a Kneser-Ney trigram on held-out reports, training and
generation speed, and whether generated daily risk summaries contain every section.

    .venv/bin/python -m benchmarks.bench_lm                 # the `make run` size
    .venv/bin/python -m benchmarks.bench_lm --records 3000 --preset tiny --summaries 20

The code paths are the pipeline's: span 0 of the reports dataset (the ETRMExampleGen
generator, --records trades per span, as `make run`) is the training data, with the Trainer's
early-stopping holdout; the vocabulary is Transform's rule; the model is trained by the
Trainer's loop and exported with the served signatures; the trigram is the evaluator's
baseline, fitted on the same training tokens in the same run. Held-out reports are span 1 (the
following week). Generation runs the exported `generate` signature. Targets: perplexity at
most 0.8x the trigram's; at least 90 of 100 generated daily risk summaries contain every
section of RISK_SUMMARY_SECTIONS.
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
TARGET_SECTION_SHARE = 0.9
RISK_SUMMARY = "risk_summary"
DEFAULT_SEED = 42


def span_texts(span: int, records: int, seed: int):
    from ml.synthetic import spans

    table = spans.generate_table(spans.SpanRequest(
        dataset="reports", span=span, records_per_span=records, seed=seed))
    return table["text"].tolist(), table["kind"].tolist()


def summary_opening(text: str) -> str:
    """The first sentence of a daily risk summary (book and date), used as a prompt."""
    return text.split(". ", 1)[0] + "."


def has_every_section(text: str, sections) -> bool:
    """Every heading, followed by a colon, in the template's order."""
    position = 0
    for section in sections:
        found = text.find(f"{section}:", position)
        if found < 0:
            return False
        position = found + len(section) + 1
    return True


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


def measure(args, config, workdir: str) -> Dict:
    import tensorflow as tf

    from components.lm_evaluator import evaluation
    from ml.synthetic.generator import RISK_SUMMARY_SECTIONS

    progress(f"generating spans 0 and 1 ({args.records:,} trades each)")
    texts, kinds = span_texts(0, args.records, args.seed)
    held_out, held_out_kinds = span_texts(1, args.records, args.seed)
    progress(f"training preset {args.preset!r} on {len(texts):,} texts (one line per epoch)")
    started = time.perf_counter()
    config, tokenizer, report, export_dir = train_and_export(texts, kinds, config, args.seed,
                                                             workdir)
    train_wall = time.perf_counter() - started

    progress("perplexity on span 1 and the Kneser-Ney trigram baseline")
    model = evaluation.ExportedLanguageModel(export_dir)
    candidate = evaluation.totals(model.per_text_statistics(held_out), held_out)
    ngram = evaluation.fit_ngram_baseline(model, texts, order=3)
    ngram_perplexity = ngram.perplexity(model.token_sequences(held_out))

    progress(f"generating {args.summaries} daily risk summaries")
    generate = tf.saved_model.load(export_dir).signatures["generate"]
    openings = [summary_opening(t) for t, k in zip(held_out, held_out_kinds) if k == RISK_SUMMARY]
    prompts = [openings[i % len(openings)] for i in range(args.summaries)]
    generated, tokens, seconds = generation_run(generate, tokenizer, prompts, config.max_length,
                                                args.temperature, args.top_k)
    complete = sum(has_every_section(text, RISK_SUMMARY_SECTIONS) for text in generated)
    single = [generation_run(generate, tokenizer, prompts[:1], 100, args.temperature, args.top_k)
              for _ in range(args.repeats)]
    epoch_speeds = [row["train_tokens_per_second"] for row in report["history"]]
    return {
        "config": config, "report": report, "train_wall_s": train_wall,
        "vocabulary_size": tokenizer.vocabulary_size,
        "train_texts": len(texts), "held_out_texts": len(held_out),
        "perplexity": candidate.perplexity, "token_accuracy": candidate.token_accuracy,
        "ngram_perplexity": ngram_perplexity, "ratio": candidate.perplexity / ngram_perplexity,
        "train_tokens_per_s": statistics.median(epoch_speeds),
        "batch_generation_tokens_per_s": tokens / seconds, "batch_generation_s": seconds,
        "single_generation_tokens_per_s": statistics.median(t / s for _, t, s in single),
        "complete": complete, "summaries": len(generated), "sections": RISK_SUMMARY_SECTIONS,
        "example": generated[0],
    }


def render(args, result: Dict, machine: str) -> str:
    config = result["config"]
    ratio_met = result["ratio"] <= TARGET_PERPLEXITY_RATIO
    share = result["complete"] / max(result["summaries"], 1)
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
        f"holdout for early stopping), measured on span 1 ({result['held_out_texts']} texts).",
        "",
        "| figure | value |", "| --- | ---: |",
        f"| perplexity on held-out reports | {result['perplexity']:.3f} |",
        f"| Kneser-Ney trigram perplexity (same tokens, same run) | {result['ngram_perplexity']:.3f} |",
        f"| ratio (target <= {TARGET_PERPLEXITY_RATIO}) | {result['ratio']:.3f} "
        f"({'met' if ratio_met else 'NOT met'}) |",
        f"| next-token accuracy on held-out reports | {result['token_accuracy']:.3f} |",
        f"| training tokens/s (median of {len(result['report']['history'])} epochs) | "
        f"{result['train_tokens_per_s']:.0f} |",
        f"| training wall time incl. tokenization and export | {result['train_wall_s']:.0f} s |",
        f"| generation tokens/s, batch of {result['summaries']} | "
        f"{result['batch_generation_tokens_per_s']:.0f} |",
        f"| generation tokens/s, one prompt (median of {args.repeats}) | "
        f"{result['single_generation_tokens_per_s']:.0f} |",
        f"| generated risk summaries with every section {list(result['sections'])} "
        f"(target >= {TARGET_SECTION_SHARE:.0%}) | {result['complete']}/{result['summaries']} "
        f"({'met' if share >= TARGET_SECTION_SHARE else 'NOT met'}) |",
        "",
        f"Sampling: temperature {args.temperature}, top_k {args.top_k}; prompts are the opening "
        "sentences of span 1's daily risk summaries. First generated summary:",
        "", f"> {result['example']}",
    ])


def main(argv=None) -> int:
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
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
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
