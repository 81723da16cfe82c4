"""The body of `perfsuite infer`: read sentences from a text file (one per line; for qa a question TAB context
pair), tokenize them with the uncased BERT vocab, run them in batches through one prepared path and save the
outputs as .npy (atomically). Errors name the option and the file's line."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence, TextIO, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.outputs import check_output_file
from perfsuite.parity.model import model_weights, with_embedding
from perfsuite.paths.model import MODEL_PATHS, prepare
from perfsuite.results import write_atomic
from perfsuite.tokenizer import Tokenizer
from perfsuite.validate import check_batch_size, check_choice
from perfsuite.weights import CONFIGS, TASKS

__all__ = ["InferOptions", "read_sentences", "encode", "run_infer"]


@dataclass
class InferOptions:
    """The inputs of `perfsuite infer` (the CLI's options, same names)."""

    model: str
    task: str
    input: str
    output: str
    path: str = "hybridized"
    seq_len: int = 128
    batch_size: int = 32
    truncate: bool = False
    weights: Optional[str] = None
    custom_pass_lib: Optional[str] = None
    custom_passes: Sequence[str] = ()
    force: bool = False


def read_sentences(args: InferOptions) -> Tuple[list, list]:
    """`perfsuite infer --input`: the non-blank lines with their line numbers, and the sentences (qa: question and
    context pairs); a clear error naming the file and line otherwise."""
    try:
        with open(args.input, encoding="utf-8") as fh:  # text mode: \r\n and \r arrive as \n
            lines = [ln.strip() for ln in fh.read().split("\n")]  # not splitlines(): it also splits at \x0b, \u2028
    except OSError as exc:
        raise PerfsuiteInputError(f"--input {args.input!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PerfsuiteInputError(f"--input {args.input!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  "allowed: a UTF-8 text file, one sentence per line") from None
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln]  # (line number in the file, sentence)
    sentences: list = [ln for _, ln in numbered]
    if not sentences:
        raise PerfsuiteInputError(f"--input {args.input!r} has no sentence (empty or blank lines only)")
    if args.task == "qa":  # question TAB context, as BERT reads SQuAD: two segments
        pairs = []
        for lineno, ln in numbered:
            parts = [x.strip() for x in ln.split("\t")]
            if len(parts) != 2 or not all(parts):
                raise PerfsuiteInputError(f"--input {args.input!r} line {lineno}: --task qa needs 'question<TAB>context' "
                                          f"on every line; got {len(parts) - 1} tab(s)")
            pairs.append((parts[0], parts[1]))
        sentences = pairs
    return numbered, sentences


def encode(args: InferOptions, cfg: Any, numbered: list, sentences: list) -> Tuple[Any, Any, Any]:
    """Token ids, segment types and valid lengths of the sentences; a sentence too long names its line."""
    from perfsuite.models import load_minilm

    vocab = load_minilm()[2]
    tokenizer = Tokenizer(vocab)
    try:
        ids, types, valid = tokenizer.encode(sentences, seq_len=args.seq_len, truncate=args.truncate)
    except PerfsuiteInputError:
        # the tokenizer names the index among non-blank sentences and its API argument; name the file's line instead
        for (lineno, _), sentence in zip(numbered, sentences):
            pieces = sentence if isinstance(sentence, tuple) else (sentence,)
            n = sum(len(tokenizer.tokenize(x)) for x in pieces) + len(pieces) + 1
            if n > args.seq_len:
                raise PerfsuiteInputError(
                    f"--input {args.input!r} line {lineno} has {n} tokens with [CLS] and [SEP], more than "
                    f"--seq-len {args.seq_len}; allowed: at most {args.seq_len} (pass --truncate to cut it, or a "
                    f"larger --seq-len up to {cfg.max_length})") from None
        raise
    return ids, types, valid


def run_infer(args: InferOptions, err: Optional[TextIO] = None) -> Tuple[int, ...]:
    """Check every input, then read, tokenize, run in batches and save the outputs atomically; their shape."""
    from perfsuite.models import load_weights_file  # loads MXNet and GluonNLP

    err = sys.stderr if err is None else err
    check_choice("model", args.model, list(CONFIGS))
    check_choice("task", args.task, TASKS)
    check_choice("path", args.path, list(MODEL_PATHS))
    check_batch_size(args.batch_size, "--batch-size")
    cfg = CONFIGS[args.model]
    if not 2 <= args.seq_len <= cfg.max_length:
        raise PerfsuiteInputError(f"--seq-len {args.seq_len}: allowed 2 <= seq_len <= {cfg.max_length}")
    if args.path != "graph_pass" and (args.custom_pass_lib or args.custom_passes):
        raise PerfsuiteInputError(f"--custom-pass-lib/--custom-passes apply to --path graph_pass only; got --path "
                                  f"{args.path}")
    if args.path == "graph_pass":
        if not args.custom_pass_lib or not args.custom_passes:
            raise PerfsuiteInputError("--path graph_pass needs --custom-pass-lib LIB.so and --custom-passes NAME[,...]")
        if not os.path.isfile(args.custom_pass_lib):
            raise PerfsuiteInputError(f"--custom-pass-lib {args.custom_pass_lib!r} does not exist")
    check_output_file(args.output, "--output", ".npy", force=args.force)
    numbered, sentences = read_sentences(args)
    ids, types, valid = encode(args, cfg, numbered, sentences)
    weights = load_weights_file(args.weights, cfg) if args.weights else model_weights(args.model)
    kwargs: dict = {}
    if args.path == "graph_pass":
        kwargs = {"pass_library": args.custom_pass_lib, "passes": list(args.custom_passes)}
    if MODEL_PATHS[args.path].judged_by == "agreement":
        kwargs["calib_batches"] = [(ids[:64], types[:64], valid[:64])]
    print(f"perfsuite infer: {len(sentences)} sentences, {args.model} via {args.path}", file=err)
    runner = prepare(args.path, cfg, weights, task=args.task, **kwargs)
    parts = []
    for start in range(0, len(sentences), args.batch_size):
        sl = slice(start, start + args.batch_size)
        out = with_embedding(runner(ids[sl], types[sl], valid[sl]), valid[sl])
        key = {"classification": "classification", "qa": "qa", "embedding": "embedding_mean"}[args.task]
        parts.append(out[key].astype(np.float32))
        print(f"  {min(start + args.batch_size, len(sentences))}/{len(sentences)}", file=err)
    result = np.concatenate(parts)

    write_atomic(os.path.abspath(args.output), lambda fh: np.save(fh, result), binary=True)
    return tuple(result.shape)
