"""The decoder-only LM, its serving signatures and warm start."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from models.lm import sequences, trainer, training
from models.lm.config import ModelConfig
from models.lm.decoding import CachedDecoder
from models.common.warm_start import warm_start
from models.lm.model import build_model, masked_token_cross_entropy
from models.lm.serving import ReportLMServingModule
from models.lm.tokenizer import EOS_ID, PAD_ID, UNK_ID, Tokenizer, read_vocabulary
from tests import lm_fixtures


@pytest.fixture(scope="module")
def trained():
    return lm_fixtures.trained_model()


@pytest.fixture(scope="module")
def exported(trained):
    return tf.saved_model.load(trained.export_dir)


def _generate(exported, prompts, max_new_tokens=40, temperature=0.0, top_k=0):
    generate = (exported.generate if isinstance(exported, ReportLMServingModule)
                else exported.signatures["generate"])
    outputs = generate(
        prompt=tf.constant(prompts), max_new_tokens=tf.constant(max_new_tokens, tf.int32),
        temperature=tf.constant(temperature, tf.float32), top_k=tf.constant(top_k, tf.int32))
    return [text.decode("utf-8") for text in outputs["text"].numpy()]


def test_a_later_token_never_changes_an_earlier_tokens_logits():
    config = ModelConfig(vocab_size=200, embedding_dim=32, max_length=24, hidden_dim=64,
                         num_heads=4, num_layers=2, dropout=0.0)
    tf.keras.utils.set_random_seed(1)
    model = build_model(config, vocabulary_size=200)
    rng = np.random.default_rng(0)
    original = rng.integers(4, 200, size=(3, 20))
    for changed_at in (0, 7, 19):
        changed = original.copy()
        changed[:, changed_at:] = rng.integers(4, 200, size=(3, 20 - changed_at))
        before, after = model(original).numpy(), model(changed).numpy()
        np.testing.assert_allclose(before[:, :changed_at], after[:, :changed_at], atol=1e-5)
        assert not np.allclose(before[:, changed_at], after[:, changed_at], atol=1e-5)


def test_cached_decoding_computes_the_models_logits():
    config = ModelConfig(vocab_size=200, embedding_dim=32, max_length=24, hidden_dim=64,
                         num_heads=4, num_layers=2, dropout=0.0)
    tf.keras.utils.set_random_seed(2)
    model = build_model(config, vocabulary_size=200)
    decoder = CachedDecoder(model, config.max_length)
    ids = np.random.default_rng(1).integers(4, 200, size=(2, 12))
    expected = model(ids).numpy()
    prefill_logits, caches = decoder.prefill(tf.constant(ids[:, :5]))
    np.testing.assert_allclose(prefill_logits.numpy(), expected[:, :5], atol=1e-4)
    for position in range(5, 12):
        step_logits, caches = decoder.step(tf.constant(ids[:, position]),
                                           tf.constant([position, position]), caches)
        np.testing.assert_allclose(step_logits.numpy(), expected[:, position], atol=1e-4)
    uneven = np.stack([ids[0, :5], np.r_[ids[1, :3], PAD_ID, PAD_ID]])
    _, caches = decoder.prefill(tf.constant(uneven))
    step_logits, _ = decoder.step(tf.constant([ids[0, 5], ids[1, 3]]), tf.constant([5, 3]), caches)
    np.testing.assert_allclose(step_logits.numpy(), expected[[0, 1], [5, 3]], atol=1e-4)


def test_score_equals_the_training_loss_on_the_same_text(trained, exported):
    texts = lm_fixtures.corpus().eval[:4]
    scores = exported.signatures["score"](text=tf.constant(texts))
    assert scores["log_likelihood"].dtype == tf.float32 and scores["num_tokens"].dtype == tf.int32
    for index, text in enumerate(texts):
        inputs, targets = sequences.padded_pairs(trained.tokenizer, tf.constant([text]),
                                                 trained.config.max_length)
        loss = float(masked_token_cross_entropy(targets, trained.model(inputs)))
        mean_nll = -scores["log_likelihood"][index].numpy() / scores["num_tokens"][index].numpy()
        assert mean_nll == pytest.approx(loss, rel=1e-4)
        assert scores["num_tokens"][index] == int(tf.reduce_sum(tf.cast(targets != PAD_ID, tf.int32)))


def test_scores_do_not_depend_on_the_other_texts_in_the_batch(exported):
    texts = lm_fixtures.corpus().eval[:5]
    together = exported.signatures["score"](text=tf.constant(texts))["log_likelihood"].numpy()
    alone = [exported.signatures["score"](text=tf.constant([t]))["log_likelihood"].numpy()[0]
             for t in texts]
    np.testing.assert_allclose(together, alone, rtol=1e-4)


def test_training_lowered_the_eval_loss(trained):
    assert trained.report["best_eval_loss"] < trained.report["initial_eval_loss"] - 1.0


def test_greedy_generation_is_deterministic_and_batch_independent(exported):
    prompts = ["Daily risk summary for PROP_TRADING on 2024-01-03.", "Trade confirmation"]
    first = _generate(exported, prompts)
    assert first == _generate(exported, prompts)
    assert first[1] == _generate(exported, [prompts[1]])[0]
    assert all(text.startswith(prompt) and len(text) > len(prompt)
               for text, prompt in zip(first, prompts))


def test_sampling_respects_top_k_and_the_token_budget(trained, exported):
    prompt = "Trade confirmation"
    samples = _generate(exported, [prompt] * 4, max_new_tokens=12, temperature=1.0, top_k=5)
    for text in samples:
        continuation = trained.tokenizer.encode(tf.constant([text[len(prompt):]])).flat_values
        assert text.startswith(prompt) and 0 < len(continuation) <= 12 + 2
    assert _generate(exported, [prompt], max_new_tokens=0) == [prompt]


def test_generation_stops_at_the_window(trained):
    never_ends = build_model(trained.config, trained.tokenizer.vocabulary_size)
    never_ends.set_weights(trained.model.get_weights())
    embedding = never_ends.get_layer("token_embedding")
    embedding.output_bias.assign(tf.tensor_scatter_nd_update(embedding.output_bias, [[EOS_ID]], [-1e4]))
    module = ReportLMServingModule(never_ends, trained.tokenizer, trained.config)
    room = trained.config.max_length - 1 - len(trained.tokenizer.encode(tf.constant(["Trade"]))[0])
    full, exact, short = (_generate(module, ["Trade"], max_new_tokens=n) for n in (10_000, room, room - 1))
    assert full == exact != short


def test_signatures_follow_the_serving_contract(exported):
    generate = exported.signatures["generate"]
    inputs = generate.structured_input_signature[1]
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        "prompt": (tf.string, [None]), "max_new_tokens": (tf.int32, []),
        "temperature": (tf.float32, []), "top_k": (tf.int32, [])}
    assert generate.structured_outputs["text"].dtype == tf.string
    score = exported.signatures["score"]
    assert {n: s.dtype for n, s in score.structured_input_signature[1].items()} == {"text": tf.string}
    assert {n: s.dtype for n, s in score.structured_outputs.items()} == {
        "log_likelihood": tf.float32, "num_tokens": tf.int32}


def test_summarize_writes_each_records_values_where_the_model_writes_its_slots(trained, exported):
    """A model made to prefer one slot token writes it; summarize puts each row's value there."""
    from ml.core.report_slots import SLOT_NAMES, fill_slots, slot_token
    from models.lm.tokenizer import RESERVED_TOKENS

    slot_model = build_model(trained.config, trained.tokenizer.vocabulary_size)
    slot_model.set_weights(trained.model.get_weights())
    embedding = slot_model.get_layer("token_embedding")
    favourite = RESERVED_TOKENS.index(" " + slot_token("var_95"))
    embedding.output_bias.assign(tf.tensor_scatter_nd_update(embedding.output_bias,
                                                             [[favourite]], [1e4]))
    module = ReportLMServingModule(slot_model, trained.tokenizer, trained.config)
    prompt = ("Risk record: positions in three or more markets; breaches: none; previous "
              "report: yes. Summary:")
    values = [[f"{name.upper()}-{row}" for name in SLOT_NAMES] for row in range(2)]
    summaries = module.summarize(
        prompt=tf.constant([prompt, prompt]), slot_values=tf.constant(values),
        max_new_tokens=tf.constant(3), temperature=tf.constant(0.0), top_k=tf.constant(0))
    written = [text.decode("utf-8") for text in summaries["text"].numpy()]
    slotted = _generate(module, [prompt], max_new_tokens=3)[0][len(prompt):]
    assert slotted == " " + " ".join([slot_token("var_95")] * 3)
    assert written == [fill_slots(slotted, row).strip() for row in values]
    assert written[0] == "VAR_95-0 VAR_95-0 VAR_95-0"
    without_var = [list(values[0]), list(values[0])]
    without_var[1][SLOT_NAMES.index("var_95")] = ""
    masked = module.summarize(
        prompt=tf.constant([prompt, prompt]), slot_values=tf.constant(without_var),
        max_new_tokens=tf.constant(3), temperature=tf.constant(0.0), top_k=tf.constant(0))
    kept, avoided = (text.decode("utf-8") for text in masked["text"].numpy())
    assert kept == "VAR_95-0 VAR_95-0 VAR_95-0"
    assert "VAR_95" not in avoided, "a slot the record leaves empty is never written"
    inputs = exported.signatures["summarize"].structured_input_signature[1]
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        "prompt": (tf.string, [None]), "slot_values": (tf.string, [None, len(SLOT_NAMES)]),
        "max_new_tokens": (tf.int32, []), "temperature": (tf.float32, []), "top_k": (tf.int32, [])}


def test_summarize_writes_only_the_records_own_decision_slot_and_prints_nothing_for_it(trained):
    """A model made to prefer a decision slot writes it only for a record that holds it, and the
    summary shows nothing of it."""
    from ml.core.report_slots import SLOT_NAMES, decision_values, slot_token
    from models.lm.tokenizer import RESERVED_TOKENS

    decision_model = build_model(trained.config, trained.tokenizer.vocabulary_size)
    decision_model.set_weights(trained.model.get_weights())
    embedding = decision_model.get_layer("token_embedding")
    favourite = RESERVED_TOKENS.index(slot_token("breaches_var"))
    embedding.output_bias.assign(tf.tensor_scatter_nd_update(embedding.output_bias,
                                                             [[favourite]], [1e4]))
    module = ReportLMServingModule(decision_model, trained.tokenizer, trained.config)
    prompt = "Risk record: positions in one market; breaches: VaR limit; previous report: yes. Summary:"
    holds = decision_values(True, False, True)
    # The second row holds no decision at all, so nothing it may write prints nothing.
    rows = [[holds.get(name, name.upper()) for name in SLOT_NAMES],
            [{**holds, **dict.fromkeys(holds, "")}.get(name, name.upper()) for name in SLOT_NAMES]]
    summaries = module.summarize(
        prompt=tf.constant([prompt, prompt]), slot_values=tf.constant(rows),
        max_new_tokens=tf.constant(3), temperature=tf.constant(0.0), top_k=tf.constant(0))
    held, not_held = (text.decode("utf-8") for text in summaries["text"].numpy())
    assert held == "", "the record's decision slot is written and prints nothing"
    assert not_held != "", "a decision the record does not hold is never written"


def test_fine_tuning_starts_from_the_previous_blessed_weights(trained):
    data = lm_fixtures.corpus()
    previous = trainer.load_previous(trained.artifact_dir)
    assert previous.vocabulary_file.endswith(trainer.VOCABULARY_FILE)
    evaluation = lm_fixtures.text_sequences(trained.tokenizer, data.eval, data.eval_kinds,
                                            trained.config)
    batches = sequences.training_batches(sequences.ids_only(evaluation), trained.config.batch_size,
                                         trained.config.max_length)
    previous_eval_loss = training.LanguageModelTrainer(trained.model, 1e-3).evaluate(batches)["loss"]
    assert previous_eval_loss == pytest.approx(trained.report["best_eval_loss"], rel=1e-5)

    fine_tuned = build_model(trained.config, trained.tokenizer.vocabulary_size)
    report = warm_start(fine_tuned, previous.model)
    assert set(report.values()) == {"warm"}
    train = lm_fixtures.text_sequences(trained.tokenizer, data.train, data.train_kinds,
                                       trained.config)
    result = training.fit(fine_tuned, train, evaluation, trained.config, seed=5, train_steps=1)
    assert result["initial_eval_loss"] == pytest.approx(previous_eval_loss, rel=1e-4)
    cold = build_model(trained.config, trained.tokenizer.vocabulary_size)
    cold_loss = training.LanguageModelTrainer(cold, 1e-3).evaluate(batches)["loss"]
    assert cold_loss > previous_eval_loss + 1.0


def test_fine_tuning_keeps_the_previous_vocabulary_and_spells_out_new_words(trained):
    class NewSpanTransform:
        def vocabulary_file_by_name(self, name):
            raise AssertionError("a warm start must not use the new span's vocabulary")

    previous = trainer.load_previous(trained.artifact_dir)
    vocabulary_file, source = trainer.choose_vocabulary(previous, NewSpanTransform())
    assert source == "base_model"
    assert read_vocabulary(vocabulary_file) == read_vocabulary(trained.vocabulary_file)
    new_words = "Hydrogen swap with Zephyrine Renewables Pty, rated AA-, at 1,234.5 EUR/kg."
    reused = Tokenizer(vocabulary_file)
    ids = reused.encode(tf.constant([new_words]))
    assert UNK_ID not in ids.flat_values.numpy()
    assert reused.decode(ids).numpy()[0].decode() == new_words


def test_warm_start_reports_layers_whose_shape_changed(trained):
    wider = dataclasses.replace(trained.config, hidden_dim=trained.config.hidden_dim * 2)
    report = warm_start(build_model(wider, trained.tokenizer.vocabulary_size), trained.model)
    assert report["token_embedding"] == "warm"
    assert report["decoder_0"] == "fresh (shape changed)"


def test_end_token_ends_training_sequences(trained):
    ids = sequences.token_sequences(trained.tokenizer, tf.constant(["VaR: none."]), 64)
    assert ids.to_list()[0][-1] == EOS_ID
