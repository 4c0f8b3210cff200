"""Frames from a film: the frame log with its shot cuts (`cuts`), which frames are sampled and measured
(`sampling`), near-duplicates (`dedup`) and the quality filter (`quality`)."""
