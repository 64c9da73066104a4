"""The Kneser-Ney baseline: a proper distribution, better than uniform, predictable errors."""
import numpy as np
import pytest

from models.lm.ngram import KneserNeyLanguageModel
from models.lm.tokenizer import BOS_ID, EOS_ID

VOCABULARY = 12


def _sequences(rng, count=200):
    """<s> then a noisy repeating pattern 4 5 6 7 ... then </s>."""
    rows = []
    for _ in range(count):
        body = (4 + (np.arange(rng.integers(3, 15)) + rng.integers(0, 4)) % 4).tolist()
        if rng.random() < 0.3:
            body[rng.integers(len(body))] = int(rng.integers(8, VOCABULARY))
        rows.append(np.array([BOS_ID] + body + [EOS_ID]))
    return rows


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_over_the_vocabulary_sum_to_one(order):
    model = KneserNeyLanguageModel(order, VOCABULARY).fit(_sequences(np.random.default_rng(0)))
    for history in ([BOS_ID], [BOS_ID, 4, 5], [BOS_ID, 9, 11, 6], [BOS_ID, 7, 7, 7]):
        candidates = [np.array(history + [word]) for word in range(VOCABULARY)]
        last = [model.log_probabilities([c])[-1] for c in candidates]
        assert np.exp(last).sum() == pytest.approx(1.0, abs=1e-9)


def test_higher_orders_fit_structured_text_better_and_beat_uniform():
    rng = np.random.default_rng(1)
    train, held_out = _sequences(rng), _sequences(rng, 50)
    perplexities = [KneserNeyLanguageModel(order, VOCABULARY).fit(train).perplexity(held_out)
                    for order in (1, 2, 3)]
    assert perplexities[2] < perplexities[1] < perplexities[0] < VOCABULARY


def test_every_predicted_token_is_scored_once():
    model = KneserNeyLanguageModel(3, VOCABULARY).fit(_sequences(np.random.default_rng(2)))
    held_out = [np.array([BOS_ID, 4, 5, EOS_ID]), np.array([BOS_ID, EOS_ID])]
    assert len(model.log_probabilities(held_out)) == 3 + 1


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValueError, match="order"):
        KneserNeyLanguageModel(5, VOCABULARY)
    with pytest.raises(ValueError, match="discount"):
        KneserNeyLanguageModel(3, VOCABULARY, discount=1.0)
    with pytest.raises(ValueError, match="token ids"):
        KneserNeyLanguageModel(3, VOCABULARY).fit([np.array([BOS_ID, VOCABULARY])])
    with pytest.raises(ValueError, match="at least one"):
        KneserNeyLanguageModel(3, VOCABULARY).fit([np.array([BOS_ID])])
    with pytest.raises(ValueError, match="fit"):
        KneserNeyLanguageModel(3, VOCABULARY).log_probabilities([np.array([BOS_ID, 4])])
