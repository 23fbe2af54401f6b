"""The private Lightning/PyTorch details in genlab/compat.py still hold in the installed versions."""

import inspect

import torch
from pytorch_lightning.strategies.launchers import multiprocessing as spawn_launcher

from genlab.callbacks.checkpoint_io import AtomicCheckpointIO
from genlab.compat import SPAWN_RESULTS_NAME, set_last_lr


def test_spawn_launcher_passes_weights_back_in_a_file_of_that_name_through_checkpoint_io():
    source = inspect.getsource(spawn_launcher._MultiProcessingLauncher)
    assert f'"{SPAWN_RESULTS_NAME}"' in source
    assert "checkpoint_io.load_checkpoint(worker_output.weights_path)" in source


def test_checkpoint_io_reads_back_spawn_weights_without_a_run_record(tmp_path):
    weights = {"net.weight": torch.randn(3, 2)}
    path = tmp_path / SPAWN_RESULTS_NAME
    AtomicCheckpointIO().save_checkpoint(weights, path)
    assert torch.equal(AtomicCheckpointIO().load_checkpoint(path)["net.weight"], weights["net.weight"])


def test_set_last_lr_is_what_the_scheduler_reports():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
    set_last_lr(scheduler, [0.5])
    assert scheduler.get_last_lr() == [0.5]
