"""Faces: crops around detected faces and framing tags (`crops`), expressions from FaceMesh geometry
(`expressions`), and the labelling of each face by a classifier backend (`labelling`)."""
