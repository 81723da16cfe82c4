"""perfsuite's own C++ graph-pass library and the machinery to use any pass library (MXNet >= 1.7, REGISTER_PASS
+ optimize_for): library.py builds, loads and applies libraries in this process (its docstring lists the passes and
the MXNet behaviour guarded against), isolated.py applies them in a child process (child.py) that turns a crash or a
hang into PassLibraryCrashed, common.py holds the pass names and limits. The public names are re-exported here."""

from __future__ import annotations

from perfsuite.passes.library import (CHILD_INPUT_ERROR_STATUS, CRASH_PASS, DEFAULT_PASS_TIMEOUT_S,
                                      DEFAULT_STARTUP_TIMEOUT_S, DROP_BIAS_PASS, GLUONNLP_FFN_NAME, HANG_PASS,
                                      IDENTITY_PASS, IsolatedPassResult, PASS_NAMES, PASS_SOURCE, PassLibraryCrashed,
                                      apply_passes, apply_passes_isolated, build_pass_library, default_cache_dir,
                                      library_passes, load_pass_library, loaded_passes, skip_reason_passes)

__all__ = ["CHILD_INPUT_ERROR_STATUS", "CRASH_PASS", "DEFAULT_PASS_TIMEOUT_S", "DEFAULT_STARTUP_TIMEOUT_S",
           "DROP_BIAS_PASS", "GLUONNLP_FFN_NAME", "HANG_PASS", "IDENTITY_PASS", "IsolatedPassResult", "PASS_NAMES",
           "PASS_SOURCE", "PassLibraryCrashed", "apply_passes", "apply_passes_isolated", "build_pass_library",
           "default_cache_dir", "library_passes", "load_pass_library", "loaded_passes", "skip_reason_passes"]
