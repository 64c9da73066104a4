"""The report tokenizer: domain words from a vocabulary, digits one by one, characters as fallback.

Pure TensorFlow ops, so the same code runs inside Transform's preprocessing_fn, the Trainer's
input pipeline and the served SavedModel (TF Serving needs no extra op library).

- Text is cut into pieces: a word (ASCII letters), a run of digits, a single other character,
  each optionally carrying the space before it (" risk", " 7", " ("), or a lone whitespace
  character. Newline, tab and carriage return are written as visible symbols so every
  vocabulary entry fits on one line of the vocabulary file.
- Numbers, prices and dates become one token per digit and punctuation tokens, so they never
  grow the vocabulary. A digit token also says its place in its group of three counted from
  the right ("2,484.50" -> 2 , 4₂ 8₁ 4 . 5₁ 0): a 60-token alphabet (10 digits x 3
  places x with/without a leading space) with which a small model writes "1,234,567" without
  counting digits. Decoding prints only the digit.
- Ids: the reserved tokens first (special tokens, every printable ASCII character, the
  space-prefixed digits and punctuation, the place-marked digits), then the words Transform
  learned, by frequency.
- A record slot ("⟨var_95⟩", ml.core.report_slots) is one reserved token, with or without the
  space before it: conditioned risk summaries are written with slots, and `decode` given a
  record's values writes the value in place of each slot, and nothing for a decision slot
  (without values, the slot itself).
- A piece outside the vocabulary is spelt out in reserved characters; only characters outside
  printable ASCII become <unk>. ASCII text therefore round-trips exactly, and a new word never
  needs a new id: that is what keeps the vocabulary stable when a model is fine-tuned.
"""
from __future__ import annotations

import string
from typing import Callable, List, Optional, Sequence, Tuple

import tensorflow as tf

from ml.core.report_slots import SLOT_NAMES, SLOT_PIECE_PATTERN, VALUE_SLOT_NAMES, slot_token

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIAL_TOKENS: Tuple[str, ...] = (PAD, BOS, EOS, UNK)

# Whitespace that cannot live on one line of a vocabulary file, and its visible stand-in.
WHITESPACE_ESCAPES: Tuple[Tuple[str, str], ...] = (("\n", "\u2424"), ("\t", "\u2409"),
                                                   ("\r", "\u240d"))
PIECE_PATTERN = "(" + SLOT_PIECE_PATTERN + r"| ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]|\s)"
NUMBER_PATTERN = r" ?[0-9]+"
# Place of a digit in its group of three, counted from the right: units carry no mark.
PLACE_MARKS: Tuple[str, ...] = ("", "\u2081", "\u2082")
_PIECE_MARK = "\x01"
UNKNOWN_TEXT = "\ufffd"


def reserved_tokens() -> List[str]:
    """Tokens with fixed ids whatever the data: specials, characters, space-prefixed symbols,
    place-marked digits, record slots (each without, then with, a leading space)."""
    printable = [c for c in string.printable if c not in string.whitespace or c == " "]
    escapes = [symbol for _, symbol in WHITESPACE_ESCAPES]
    spaced = [" " + c for c in string.digits + string.punctuation]
    placed = [space + digit + mark for mark in PLACE_MARKS[1:] for space in ("", " ")
              for digit in string.digits]
    slots = [space + slot_token(name) for name in SLOT_NAMES for space in ("", " ")]
    return list(SPECIAL_TOKENS) + printable + escapes + spaced + placed + slots


def _surface(token: str) -> str:
    """What a reserved token prints: nothing for control tokens, digits without their mark."""
    if token == UNK:
        return UNKNOWN_TEXT
    if token in SPECIAL_TOKENS:
        return ""
    return token.rstrip("".join(PLACE_MARKS))


RESERVED_TOKENS: Tuple[str, ...] = tuple(reserved_tokens())
RESERVED_SURFACES: Tuple[str, ...] = tuple(_surface(token) for token in RESERVED_TOKENS)
FIRST_SLOT_ID = RESERVED_TOKENS.index(slot_token(SLOT_NAMES[0]))


def escape_whitespace(texts: tf.Tensor) -> tf.Tensor:
    texts = tf.strings.regex_replace(texts, _PIECE_MARK, "")
    for raw, symbol in WHITESPACE_ESCAPES:
        texts = tf.strings.regex_replace(texts, raw, symbol)
    return texts


def unescape_whitespace(texts: tf.Tensor) -> tf.Tensor:
    for raw, symbol in WHITESPACE_ESCAPES:
        texts = tf.strings.regex_replace(texts, symbol, raw)
    return texts


def _place_marked_digits(pieces: tf.RaggedTensor) -> tf.RaggedTensor:
    """Each number piece (" 2484") -> its digits marked with their place (" 2", "4₂", ...)."""
    flat = pieces.flat_values
    is_number = tf.strings.regex_full_match(flat, NUMBER_PATTERN)
    spaced = tf.strings.regex_full_match(flat, r" .*")
    characters = tf.strings.unicode_split(flat, "UTF-8")
    position = tf.ragged.range(characters.row_lengths())
    digits = tf.ragged.boolean_mask(
        characters, tf.logical_not(tf.equal(position, 0) & tf.expand_dims(spaced, 1)))
    index = tf.ragged.range(digits.row_lengths())
    place = (tf.expand_dims(digits.row_lengths(), 1) - 1 - index) % len(PLACE_MARKS)
    marks = tf.gather(tf.constant(PLACE_MARKS), place.flat_values)
    spaces = tf.where(tf.equal(index.flat_values, 0) & tf.gather(spaced, digits.value_rowids()),
                      " ", "")
    marked = digits.with_flat_values(tf.strings.join([spaces, digits.flat_values, marks]))
    candidates = tf.concat([tf.expand_dims(flat, 1), marked], axis=1)
    keep = tf.equal(tf.equal(tf.ragged.range(candidates.row_lengths()), 0),
                    tf.expand_dims(tf.logical_not(is_number), 1))
    return pieces.with_flat_values(tf.ragged.boolean_mask(candidates, keep)).merge_dims(1, 2)


def pretokenize(texts: tf.Tensor) -> tf.RaggedTensor:
    """[batch] strings -> [batch, (pieces)] strings: words, symbols and place-marked digits."""
    marked = tf.strings.regex_replace(escape_whitespace(texts), PIECE_PATTERN, _PIECE_MARK + r"\1")
    pieces = tf.strings.split(marked, _PIECE_MARK)
    return _place_marked_digits(tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0))


def encode_pieces(pieces: tf.RaggedTensor, lookup: Callable[[tf.Tensor], tf.Tensor]) -> tf.RaggedTensor:
    """Pieces -> ids. `lookup` maps strings to vocabulary ids, -1 when absent; an absent piece
    is spelt out character by character (characters are reserved tokens, or else <unk>)."""
    flat = pieces.flat_values
    candidates = tf.concat([tf.expand_dims(flat, 1), tf.strings.unicode_split(flat, "UTF-8")],
                           axis=1)
    candidate_ids = candidates.with_flat_values(tf.cast(lookup(candidates.flat_values), tf.int64))
    known = tf.gather(candidate_ids.flat_values, candidate_ids.row_starts()) >= 0
    is_whole_piece = tf.equal(tf.ragged.range(candidates.row_lengths()), 0)
    chosen = tf.ragged.boolean_mask(candidate_ids, tf.equal(is_whole_piece, tf.expand_dims(known, 1)))
    ids = chosen.with_flat_values(tf.where(chosen.flat_values >= 0, chosen.flat_values,
                                           tf.constant(UNK_ID, tf.int64)))
    return pieces.with_flat_values(ids).merge_dims(1, 2)


def with_boundaries(ids: tf.RaggedTensor, max_tokens: int) -> tf.RaggedTensor:
    """<s> ids </s>, cut to at most max_tokens (the end token is dropped first)."""
    batch = ids.nrows()
    bos = tf.fill([batch, 1], tf.constant(BOS_ID, tf.int64))
    eos = tf.fill([batch, 1], tf.constant(EOS_ID, tf.int64))
    full = tf.concat([bos, ids, eos], axis=1)
    return full[:, :max_tokens]


class Tokenizer(tf.Module):
    """Encodes and decodes with a vocabulary file (one token per line, id = line number).

    Tracked as a SavedModel asset: a model exported with this tokenizer carries its vocabulary.
    """

    def __init__(self, vocabulary_file: str, name: str = "tokenizer"):
        super().__init__(name=name)
        self.vocabulary_asset = tf.saved_model.Asset(vocabulary_file)
        self.token_to_id = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocabulary_asset, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            default_value=-1)
        self.id_to_token = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocabulary_asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE),
            default_value=UNKNOWN_TEXT)
        self.vocabulary_size = int(self.token_to_id.size().numpy())
        check_reserved_prefix(read_vocabulary(vocabulary_file))

    def encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """[batch] strings -> [batch, (tokens)] int64 ids, without start or end tokens."""
        return encode_pieces(pretokenize(texts), self.token_to_id.lookup)

    def decode(self, ids, slot_values: Optional[tf.Tensor] = None) -> tf.Tensor:
        """[batch, (tokens)] ids (dense or ragged) -> [batch] strings; control tokens vanish.

        slot_values [batch, len(SLOT_NAMES)] strings: each row's record values, written in
        place of the slots of that row (with the slot's leading space, if any)."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        flat = tf.cast(ids.flat_values, tf.int64)
        reserved = len(RESERVED_SURFACES)
        surfaces = tf.where(
            flat < reserved,
            tf.gather(tf.constant(RESERVED_SURFACES), tf.clip_by_value(flat, 0, reserved - 1)),
            self.id_to_token.lookup(flat))
        if slot_values is not None:
            surfaces = _with_slot_values(flat, ids.value_rowids(), surfaces, slot_values)
        return unescape_whitespace(tf.strings.reduce_join(ids.with_flat_values(surfaces), axis=-1))


def _with_slot_values(flat_ids: tf.Tensor, rows: tf.Tensor, surfaces: tf.Tensor,
                      slot_values: tf.Tensor) -> tf.Tensor:
    """Surfaces with each slot token replaced by its row's value for that slot (a decision
    slot by nothing, space included)."""
    offset = flat_ids - FIRST_SLOT_ID
    is_slot = (offset >= 0) & (offset < 2 * len(SLOT_NAMES))
    slot = tf.clip_by_value(offset // 2, 0, len(SLOT_NAMES) - 1)
    values = tf.gather_nd(slot_values, tf.stack([rows, slot], axis=1))
    spaced = tf.where(tf.equal(offset % 2, 1), " ", "")
    printed = tf.where(slot < len(VALUE_SLOT_NAMES), tf.strings.join([spaced, values]), "")
    return tf.where(is_slot, printed, surfaces)


def read_vocabulary(vocabulary_file: str) -> List[str]:
    """The tokens of a vocabulary file, in id order."""
    with tf.io.gfile.GFile(vocabulary_file, "rb") as handle:
        return [line.decode("utf-8") for line in handle.read().split(b"\n")[:-1]]


def check_reserved_prefix(vocabulary: Sequence[str]) -> None:
    """Ids of reserved tokens are fixed: refuse a vocabulary that does not start with them."""
    if tuple(vocabulary[:len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
        raise ValueError("vocabulary does not start with the tokenizer's reserved tokens; "
                         "it was not built by models.lm.preprocessing or models.lm.vocabulary")
