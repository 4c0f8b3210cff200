"""The concept probes as one versioned `.safetensors` file: each concept's weights (`<concept>.coef`,
`<concept>.intercept`) and, in the metadata, the class names, the embedder's parameters, the size and the
held-out metrics (JSON). No pickle: loading runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from ..probes import Probe, Probes
from .versioned import VersionedLocalDataset


def write_probes(probes: Probes, path: str | Path) -> None:
    tensors = {f"{c}.{k}": np.ascontiguousarray(getattr(p, k), np.float32)
               for c, p in probes.probes.items() for k in ("coef", "intercept")}
    meta = {"classes": {c: p.classes for c, p in probes.probes.items()}, "embedding": probes.embedding,
            "size": list(probes.size), "metrics": probes.metrics, "reason": probes.reason}
    save_file(tensors, str(path), metadata={"probes": json.dumps(meta)})


def read_probes(path: str | Path) -> Probes:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads((f.metadata() or {})["probes"])
    tensors = load_file(str(path))
    probes = {c: Probe(c, classes, tensors[f"{c}.coef"], tensors[f"{c}.intercept"])
              for c, classes in meta["classes"].items()}
    return Probes(probes, meta["embedding"], tuple(meta["size"]), meta["metrics"], meta["reason"])


class ProbeFileDataset(VersionedLocalDataset):
    """`Probes` <-> one versioned `.safetensors` file (written as `.partial` and renamed)."""

    def save(self, data: Probes) -> None:
        with self._new_version() as path:
            write_probes(data, str(path))

    def load(self) -> Probes:
        return read_probes(self._get_load_path())

    def _present(self, path: Path) -> bool:
        return path.is_file()
