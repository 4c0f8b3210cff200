"""Clean background plates: temporal fill from the other frames of a shot (`temporal_fill`), plates as the
LoRA learns them (`plates`: alpha 0 on invented pixels, crops away from large holes), and the checks that no
character is left in them (`purity`)."""
