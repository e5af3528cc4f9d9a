"""Reports a person can open: report.md and plots of a run, the summary of a sweep.

Built from the files in the folders alone (no torch import), so ``litlab-report`` is quick and
works on any copy of an outputs/ folder.
"""
