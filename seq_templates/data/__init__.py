"""Data: file readers, the dataset registry and generated offline datasets."""
