"""Batches as tensor slices: the fast path for datasets that fit in memory.

The whole dataset is one uint8 (or float) tensor, optionally already on the training device.
Each batch is an index gather plus ONE vectorized transform (uint8 -> float range, optional
dynamic binarization); no per-sample Python or PIL work happens in the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class TensorBatches:
    """An iterable of ``(x, y)`` batches over in-memory tensors.

    Shuffling is deterministic from ``seed`` and the epoch counter, so a resumed run sees the same
    order. Under DDP each rank takes a disjoint strided shard of every permutation. The object
    exposes ``state_dict``/``load_state_dict`` so Lightning can checkpoint its position.
    """

    def __init__(
        self,
        data: Tensor,
        labels: Tensor | None,
        batch_size: int,
        transform: Callable[[Tensor], Tensor] | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.data = data
        self.labels = labels if labels is not None else torch.full((len(data),), -1, dtype=torch.long)
        self.labels = self.labels.to(data.device)
        self.batch_size = batch_size
        self.transform = transform
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._pos = 0
        self._skip = 0  # batches already consumed in the current epoch (for mid-epoch resume)

    def _num_local(self) -> int:
        n = len(self.data)
        return n // self.world_size if self.drop_last or self.world_size > 1 else n

    def __len__(self) -> int:
        n = self._num_local()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> Tensor:
        n = len(self.data)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            perm = torch.randperm(n, generator=g)
        else:
            perm = torch.arange(n)
        if self.world_size > 1:
            perm = perm[: (n // self.world_size) * self.world_size][self.rank :: self.world_size]
        return perm.to(self.data.device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self._order()
        start, self._skip = self._skip, 0
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.data[idx]
            if self.transform is not None:
                x = self.transform(x)
            self._pos = b + 1
            yield x, self.labels[idx]
        self.epoch += 1
        self._pos = 0

    def state_dict(self) -> dict:
        # Lightning fetches no batch ahead from an iterable with a length, so _pos batches were trained on
        if self._pos >= len(self):
            return {"epoch": self.epoch + 1, "pos": 0}
        return {"epoch": self.epoch, "pos": self._pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state.get("epoch", 0))
        self._skip = int(state.get("pos", 0))
