"""The GPU paths that can be checked without a GPU: a GPU-trained checkpoint on a machine without one, and the
GAN's manual optimization under a 16-mixed grad scaler (fp16 autocast on the CPU, the same Lightning plugin)."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from builders import build
from pytorch_lightning.plugins.precision import MixedPrecision
from runs_util import RING_GAN, run_cli, run_train, short
from trainers import bare_trainer

from genlab.checkpoint import load_run, weights_digest
from genlab.config.spec import DataSpec
from genlab.models.gan import GAN


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_checkpoint_trained_on_gpu_samples_on_a_machine_without_one(tmp_path, capsys):
    run = tmp_path / "run"
    run_train(run, *RING_GAN, *short(2, 2), "threads=1")
    data = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    record = data["genlab"]
    # what `trainer=gpu trainer.precision=16-mixed` on a cluster records
    record["config"]["trainer"].update(accelerator="gpu", precision="16-mixed", devices=1)
    record["config"]["dataset"]["data_dir"] = "/cluster/scratch/nowhere"
    record["weights_sha256"] = weights_digest(data["state_dict"], record)
    ckpt = tmp_path / "gpu.ckpt"
    torch.save(data, ckpt)
    assert load_run(ckpt).record.dataset.data_dir != "/cluster/scratch/nowhere"  # this machine's data dir
    out = tmp_path / "s.npy"
    code, _, err = run_cli(
        capsys, "sample", f"ckpt={ckpt}", "n=16", f"out={out}"
    )  # device=auto: this machine's
    assert code == 0, err
    assert np.isfinite(np.load(out)).all()


def first_step_grad_norms(precision_plugin=None) -> dict[str, float]:
    """G's and D's gradient norms as the GAN measures them (before clipping) on its first training step."""
    pl.seed_everything(0, verbose=False)
    spec = DataSpec((1, 32, 32), (-1.0, 1.0), None, "x")
    model = build(GAN, spec, g_width=8, d_width=8, latent_dim=16, grad_clip=1e-3, r1_gamma=1.0, gp_lambda=1.0)
    x = torch.rand(32, 1, 32, 32) * 2 - 1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(32)), batch_size=16)
    plugins = [precision_plugin] if precision_plugin is not None else []
    trainer = bare_trainer(1, plugins=plugins, log_every_n_steps=1)
    trainer.fit(model, loader)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    return {k: float(v) for k, v in model._grad_norms.items()}


def test_gan_clips_unscaled_gradients_under_the_16_mixed_grad_scaler(one_thread):
    """Lightning unscales before ``on_before_optimizer_step``, where the GAN measures and clips: the norms it
    sees under a scaler of 2**10 are the true ones (those of a 32-bit run), not 1024 times larger."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)  # 2**16 overflows (a skipped step) on step 1
    fp16 = first_step_grad_norms(MixedPrecision("16-mixed", "cpu", scaler))
    fp32 = first_step_grad_norms()
    assert set(fp16) == set(fp32) == {"g", "d"}
    for name in ("g", "d"):
        assert 0.8 < fp16[name] / fp32[name] < 1.25, (name, fp16, fp32)
