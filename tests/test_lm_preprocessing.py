"""Transform builds the tokenizer: its vocabulary and ids match what the served model uses.

Run in TFT's graph mode, as pipeline/lm_nodes.py configures the Transform component."""
import functools

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models.lm import preprocessing, tokenizer, vocabulary
from tests import lm_fixtures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    texts = lm_fixtures.corpus().train[:120]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
        {preprocessing.TEXT_KEY: tf.io.FixedLenFeature([1], tf.string)}))
    output_dir = str(tmp_path_factory.mktemp("transform"))
    vocab_size = len(tokenizer.RESERVED_TOKENS) + 60
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft-tmp")), force_tf_compat_v1=True):
        (data, _), transform_fn = (
            ([{preprocessing.TEXT_KEY: [t]} for t in texts], metadata)
            | tft_beam.AnalyzeAndTransformDataset(functools.partial(
                preprocessing.preprocessing_fn,
                custom_config={preprocessing.VOCAB_SIZE_CONFIG_KEY: vocab_size}),
                output_record_batches=False))
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return texts, data, tft.TFTransformOutput(output_dir), vocab_size


def test_vocabulary_has_reserved_tokens_first_and_fits_vocab_size(transformed):
    texts, _, output, vocab_size = transformed
    tokens = tokenizer.read_vocabulary(output.vocabulary_file_by_name(vocabulary.VOCABULARY_NAME))
    assert tuple(tokens[:len(tokenizer.RESERVED_TOKENS)]) == tokenizer.RESERVED_TOKENS
    assert len(tokenizer.RESERVED_TOKENS) < len(tokens) <= vocab_size
    assert tokens == vocabulary.build_vocabulary(texts, vocab_size)


def test_transform_ids_equal_the_serving_tokenizer_ids(transformed):
    texts, data, output, _ = transformed
    served = tokenizer.Tokenizer(output.vocabulary_file_by_name(vocabulary.VOCABULARY_NAME))
    expected = served.encode(tf.constant(texts)).to_list()
    assert [list(row[preprocessing.TOKEN_IDS_KEY]) for row in data] == expected
