"""The report tokenizer: exact round trips, digits as tokens, a stable and bounded vocabulary."""
import os

import pytest
import tensorflow as tf

from models.lm import tokenizer, vocabulary
from tests import lm_fixtures


@pytest.fixture(scope="module")
def report_tokenizer():
    return tokenizer.Tokenizer(lm_fixtures.vocabulary_file())


def _round_trip(report_tokenizer, texts):
    ids = report_tokenizer.encode(tf.constant(texts))
    return [t.decode("utf-8") for t in report_tokenizer.decode(ids).numpy()], ids


def test_report_texts_round_trip_exactly(report_tokenizer):
    texts = lm_fixtures.corpus().eval
    decoded, _ = _round_trip(report_tokenizer, texts)
    assert decoded == texts


def test_numbers_prices_and_dates_round_trip_digit_by_digit(report_tokenizer):
    text = ("Daily risk summary for PROP_TRADING on 2024-03-15. VaR: USD 2,484,301.75 at 95%; "
            "price 78.06 USD/MWh, delivery 2031-12.\nSecond line\twith a tab.")
    decoded, ids = _round_trip(report_tokenizer, [text])
    assert decoded == [text]
    pieces = [report_tokenizer.decode(tf.constant([[i]])).numpy()[0].decode() for i in ids[0].numpy()]
    digits = [p for p in pieces if p.strip().isdigit()]
    assert all(len(p.strip()) == 1 for p in digits)
    assert "".join(p.strip() for p in digits) == "".join(c for c in text if c.isdigit())


def test_digits_carry_their_place_in_groups_of_three():
    pieces = tokenizer.pretokenize(tf.constant(["USD 2,484.50 on 2024-03-15"])).to_list()[0]
    assert [p.decode() for p in pieces] == [
        "USD", " 2", ",", "4\u2082", "8\u2081", "4", ".", "5\u2081", "0", " on",
        " 2", "0\u2082", "2\u2081", "4", "-", "0\u2081", "3", "-", "1\u2081", "5"]
    digit_tokens = [t for t in tokenizer.RESERVED_TOKENS if t.strip()[:1].isdigit()]
    assert len(digit_tokens) == 10 * 3 * 2
    surfaces = dict(zip(tokenizer.RESERVED_TOKENS, tokenizer.RESERVED_SURFACES))
    assert surfaces[" 4\u2082"] == " 4" and surfaces[tokenizer.BOS] == ""


def test_unknown_words_are_spelt_out_and_non_ascii_becomes_unknown(report_tokenizer):
    text = "Zyxwvutsr counterparty Qwertz AG"
    decoded, ids = _round_trip(report_tokenizer, [text, "price in \u20ac and \u00e9"])
    assert decoded[0] == text
    assert tokenizer.UNK_ID not in ids[0].numpy()
    assert decoded[1] == f"price in {tokenizer.UNKNOWN_TEXT} and {tokenizer.UNKNOWN_TEXT}"
    assert max(ids[0].numpy()) < report_tokenizer.vocabulary_size


def test_vocabulary_starts_with_reserved_tokens_and_respects_the_size(tmp_path):
    texts = lm_fixtures.corpus().train
    tokens = vocabulary.build_vocabulary(texts, vocab_size=len(tokenizer.RESERVED_TOKENS) + 20)
    assert tuple(tokens[:len(tokenizer.RESERVED_TOKENS)]) == tokenizer.RESERVED_TOKENS
    assert len(tokens) <= len(tokenizer.RESERVED_TOKENS) + 20
    assert len(set(tokens)) == len(tokens)
    learned = tokens[len(tokenizer.RESERVED_TOKENS):]
    assert learned and not any(any(c.isdigit() for c in token) for token in learned)
    path = vocabulary.write_vocabulary(tokens, str(tmp_path / "vocab.txt"))
    assert tokenizer.read_vocabulary(path) == tokens


def test_special_tokens_have_fixed_ids():
    assert tokenizer.RESERVED_TOKENS[:4] == (tokenizer.PAD, tokenizer.BOS, tokenizer.EOS, tokenizer.UNK)
    assert (tokenizer.PAD_ID, tokenizer.BOS_ID, tokenizer.EOS_ID, tokenizer.UNK_ID) == (0, 1, 2, 3)


def test_boundaries_and_truncation(report_tokenizer):
    ids = report_tokenizer.encode(tf.constant(["VaR limit", ""]))
    bounded = tokenizer.with_boundaries(ids, max_tokens=3).to_list()
    assert bounded[0][0] == tokenizer.BOS_ID and len(bounded[0]) == 3
    assert bounded[1] == [tokenizer.BOS_ID, tokenizer.EOS_ID]


def test_a_vocabulary_without_the_reserved_prefix_is_refused(tmp_path):
    path = vocabulary.write_vocabulary(["risk", "VaR"], str(tmp_path / "bad.txt"))
    with pytest.raises(ValueError, match="reserved tokens"):
        tokenizer.Tokenizer(path)


def test_vocabulary_size_must_leave_room_for_learned_tokens():
    with pytest.raises(ValueError, match="vocab_size"):
        vocabulary.learned_capacity(len(tokenizer.RESERVED_TOKENS))


def test_tokens_that_break_the_file_format_are_refused(tmp_path):
    with pytest.raises(ValueError, match="single-line"):
        vocabulary.write_vocabulary(list(tokenizer.RESERVED_TOKENS) + ["a\nb"],
                                    os.path.join(tmp_path, "v.txt"))


def test_record_slots_are_one_token_each_and_decode_to_the_records_values(report_tokenizer):
    from ml.core.report_slots import SLOT_NAMES, slot_token

    text = f"VaR: USD {slot_token('var_95')} at 95% ({slot_token('limit_utilisation')})."
    ids = report_tokenizer.encode(tf.constant([text])).to_list()[0]
    spaced = tokenizer.RESERVED_TOKENS.index(" " + slot_token("var_95"))
    bare = tokenizer.RESERVED_TOKENS.index(slot_token("limit_utilisation"))
    assert spaced in ids and bare in ids
    assert report_tokenizer.decode(tf.constant([ids])).numpy()[0].decode() == text
    values = [[f"value-of-{name}" for name in SLOT_NAMES],
              ["1,234" if name == "var_95" else "56.7%" for name in SLOT_NAMES]]
    batch = tf.ragged.constant([ids, ids], dtype=tf.int64)
    filled = [t.decode() for t in report_tokenizer.decode(batch, tf.constant(values)).numpy()]
    assert filled == ["VaR: USD value-of-var_95 at 95% (value-of-limit_utilisation).",
                      "VaR: USD 1,234 at 95% (56.7%)."]
    unknown = report_tokenizer.encode(tf.constant(["\u27e8no_such_slot\u27e9"])).to_list()[0]
    assert tokenizer.UNK_ID in unknown


def test_a_decision_slot_is_one_token_and_prints_nothing_given_the_records_values(report_tokenizer):
    from ml.core.report_slots import DECISION_HOLDS, SLOT_NAMES, decision_values, slot_token

    text = f"Breaches:{slot_token('breaches_var')} VaR limit breached. Changes: {slot_token('previous_yes')}since"
    ids = report_tokenizer.encode(tf.constant([text])).to_list()[0]
    assert tokenizer.RESERVED_TOKENS.index(slot_token("breaches_var")) in ids
    assert tokenizer.RESERVED_TOKENS.index(" " + slot_token("previous_yes")) in ids
    holds = decision_values(breaches_var=True, breaches_exposure=False, has_previous=True)
    values = [[holds.get(name, "x") for name in SLOT_NAMES]]
    filled = report_tokenizer.decode(tf.ragged.constant([ids], dtype=tf.int64), tf.constant(values))
    assert filled.numpy()[0].decode() == "Breaches: VaR limit breached. Changes:since"
    assert holds["breaches_var"] == DECISION_HOLDS and holds["breaches_none"] == ""
