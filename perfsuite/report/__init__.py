"""Presenting saved results: the data a report is drawn from (figures), the Markdown report of a run (markdown),
its plots (plots), several runs side by side (comparison) and asv results across MXNet versions (asv)."""
