"""Layered segmentation: a frame as RGBA character instances over a background layer with its hole.
`masks` (mask post-processing every segmentation backend shares), `tracks` (instances linked through a
shot; scenery that is not a character), `split` (the layers and their tables)."""
