"""Evaluation on plain numpy/Python outputs: metrics, baselines, reports and plots."""
