"""The exact bits of weights the `fused` strategy writes in place, kept aside and put back (no second copy of
the weights in memory: a temporary file)."""

from __future__ import annotations

import tempfile

import torch


class KeptWeights:
    """The exact bits of tensors about to be written in place, kept in an unnamed temporary file (written one
    tensor at a time from the tensor's own memory: no second copy of the weights); `restore` puts them
    back."""

    def __init__(self, tensors: list[torch.Tensor]):
        self.tensors, self.file = tensors, tempfile.TemporaryFile()
        for t in tensors:
            self.file.write(memoryview(_raw(t).cpu().numpy()))

    def restore(self) -> None:
        self.file.seek(0)
        for t in self.tensors:
            raw = _raw(t)
            buffer = torch.empty(raw.numel(), dtype=torch.uint8)
            self.file.readinto(memoryview(buffer.numpy()))
            raw.copy_(buffer)
        self.file.close()


def _raw(t: torch.Tensor) -> torch.Tensor:
    """A tensor's bytes as a flat uint8 view of its own storage."""
    if not t.is_contiguous():
        raise ValueError("KeptWeights keeps contiguous tensors only")
    return t.detach().view(-1).view(torch.uint8)
