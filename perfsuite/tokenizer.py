"""The BERT tokenizer perfsuite encodes text with: GluonNLP 0.10's BERTTokenizer (lower-casing WordPiece) over a
BERT vocab.txt (ids = line numbers), batches encoded by perfsuite's convention ([CLS] tokens [SEP], [PAD]ded; a
(question, context) pair as BERT was trained for SQuAD). Used by `perfsuite infer`, the INT8 quality task and the
whole-model parity inputs from real sentences."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = ["MAX_SEQ_LEN", "Tokenizer"]

MAX_SEQ_LEN = 512
"""Longest sequence the tokenizer produces (BERT's position table)."""



def _read_vocab(path: Path) -> List[str]:
    """Tokens of a BERT vocab.txt in file order (id = line number), refusing duplicates and missing specials."""
    if not path.is_file():
        raise PerfsuiteInputError(f"vocab file {str(path)!r} does not exist; allowed: a BERT vocab.txt")
    tokens = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines()]
    while tokens and tokens[-1] == "":
        tokens.pop()
    dup = [t for t, n in Counter(tokens).items() if n > 1]
    if dup:
        raise PerfsuiteInputError(f"vocab file {str(path)!r} repeats tokens {dup[:5]}; ids must be unique")
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t not in set(tokens)]
    if missing:
        raise PerfsuiteInputError(f"vocab file {str(path)!r} lacks the special tokens {missing}")
    return tokens


class Tokenizer:
    """GluonNLP's BERTTokenizer (lower-casing WordPiece) over a vocab.txt; encodes batches by perfsuite's convention."""

    def __init__(self, vocab_path: Union[str, Path]) -> None:
        # gluonnlp loads MXNet: imported when a tokenizer is made, so that importing this module stays light
        from gluonnlp.data import BERTTokenizer
        from gluonnlp.vocab import BERTVocab

        tokens = _read_vocab(Path(vocab_path))
        # BERTVocab keeps the given token_to_idx order (as BERTVocab.from_json does): id = line of vocab.txt
        self.vocab = BERTVocab(counter=Counter(tokens), token_to_idx={t: i for i, t in enumerate(tokens)})
        if self.vocab.idx_to_token != tokens:  # pragma: no cover - a GluonNLP change, not bad input
            raise PerfsuiteInputError(f"BERTVocab reordered the tokens of {str(vocab_path)!r}")
        self.tokenizer = BERTTokenizer(self.vocab, lower=True)
        self.pad_id, self.cls_id, self.sep_id = (self.vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]"))

    def tokenize(self, sentence: str) -> List[str]:
        """WordPiece tokens of one sentence (no [CLS]/[SEP])."""
        return self.tokenizer(sentence)

    def encode(self, sentences: Sequence[Union[str, Tuple[str, str]]], seq_len: int, truncate: bool = False
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[CLS] tokens [SEP], [PAD]ded to seq_len: int32 token_ids (B, L), token_types (B, L), valid_length (B,).

        An item may be a (question, context) pair: [CLS] question [SEP] context [SEP] with token types 0 up to and
        including the first [SEP] and 1 after it, as BERT was trained for SQuAD. An item longer than seq_len with
        its special tokens is refused (truncate=False) or cut (the context first for a pair), keeping [SEP] last.
        """
        if isinstance(sentences, str) or not isinstance(sentences, Sequence):
            raise PerfsuiteInputError(f"sentences must be a list of str; got {type(sentences).__name__}")
        if len(sentences) == 0:
            raise PerfsuiteInputError("sentences is empty; allowed: a list of at least one str")
        if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or not 2 <= seq_len <= MAX_SEQ_LEN:
            raise PerfsuiteInputError(f"seq_len={seq_len!r} is not allowed; allowed: an int with "
                                      f"2 <= seq_len <= {MAX_SEQ_LEN}")
        seq_len = int(seq_len)
        ids = np.full((len(sentences), seq_len), self.pad_id, dtype=np.int32)
        types = np.zeros_like(ids)
        valid = np.zeros(len(sentences), dtype=np.int32)
        for i, s in enumerate(sentences):
            pair = isinstance(s, tuple)
            if pair and (len(s) != 2 or not all(isinstance(x, str) for x in s)):
                raise PerfsuiteInputError(f"sentences[{i}] is a tuple of {len(s)}; allowed: (question, context) strs")
            if not pair and not isinstance(s, str):
                raise PerfsuiteInputError(f"sentences[{i}] is a {type(s).__name__}; allowed: str or (str, str)")
            first = list(self.vocab[self.tokenize(s[0] if pair else s)])
            second = list(self.vocab[self.tokenize(s[1])]) if pair else []
            special = 3 if pair else 2
            n = len(first) + len(second) + special
            if n > seq_len:
                if not truncate:
                    raise PerfsuiteInputError(
                        f"sentences[{i}] has {n} tokens with [CLS] and [SEP], more than seq_len={seq_len}; "
                        f"allowed: at most {seq_len} (pass truncate=True to cut it, or a larger seq_len up to "
                        f"{MAX_SEQ_LEN})")
                room = seq_len - special
                if pair:
                    second = second[: max(0, room - len(first))]
                    first = first[: room - len(second)]
                else:
                    first = first[:room]
            row = [self.cls_id, *first, self.sep_id] + ([*second, self.sep_id] if pair else [])
            ids[i, : len(row)] = row
            if pair:
                types[i, len(first) + 2: len(row)] = 1
            valid[i] = len(row)
        return ids, types, valid
