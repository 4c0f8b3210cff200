"""Scores against the demo film's ground truth, one module per stage. Each scorer is a node of its own (wired
beside the stage's nodes); on a film without ground truth it says `{"ground_truth": false}`."""
