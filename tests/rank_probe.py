"""``python tests/rank_probe.py train <overrides>``: the `genlab train` command, plus a callback that writes what
this process saw to ``$GENLAB_RANK_PROBE/rank<global rank>.json`` (world size, nodes, local batch size, a digest
of its first batch and of its final weights). Multi-process tests launch it the way users launch genlab."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

import genlab.run.train
from genlab.cli import main


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class RankProbe(pl.Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.seen = out, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.seen:
            self.seen = {"local_batch": len(batch[0]), "first_batch": digest({"x": batch[0]})}

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        record = {
            **self.seen,
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "num_nodes": trainer.num_nodes,
            "global_step": trainer.global_step,
            "weights": digest(pl_module.state_dict()),
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def train_task(cfg):
    probe = RankProbe(Path(os.environ["GENLAB_RANK_PROBE"]))
    return genlab.run.train.train(cfg, extra_callbacks=[probe])["optimized_metric"]


if __name__ == "__main__":
    genlab.run.train.train_task = train_task  # what `genlab train` calls
    sys.exit(main(sys.argv[1:]))
