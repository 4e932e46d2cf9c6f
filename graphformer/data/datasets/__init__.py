"""Datasets, one family per file; each declares its DatasetInfo once."""
