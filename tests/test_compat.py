"""The private Lightning/PyTorch details in genlab/compat.py still hold in the installed versions."""

import inspect

import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies.launchers import multiprocessing as spawn_launcher
from torch.utils.data import DataLoader, TensorDataset
from trainers import bare_trainer

from genlab.run.callbacks.checkpoint_io import AtomicCheckpointIO
from genlab.utils.compat import SPAWN_RESULTS_NAME, logs_kept_this_step, set_last_lr, summary_file_writer


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


class RecordsKeptSteps(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.kept: list[int] = []

    def training_step(self, batch, batch_idx):
        if logs_kept_this_step(self.trainer):
            self.kept.append(self.global_step)
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=4)


def test_logs_kept_this_step_follows_log_every_n_steps():
    module = RecordsKeptSteps()
    bare_trainer(9, log_every_n_steps=3).fit(module)
    assert module.kept == [2, 5, 8]  # the steps whose logged values Lightning keeps


def test_summary_file_writer_writes_raw_summaries(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    writer = SummaryWriter(str(tmp_path))
    _, session_start, _ = hparams({"lr": 0.1}, {})
    summary_file_writer(writer).add_summary(session_start)
    writer.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")


def test_event_accumulator_reads_through_the_loader_it_is_given(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    from genlab.utils.compat import set_event_loader

    class Watcher:
        def Load(self):
            yield Event(step=7, summary=Summary(value=[Summary.Value(tag="val/x", simple_value=0.5)]))

    acc = EventAccumulator(str(tmp_path))  # an empty dir: whatever it reads comes from the watcher
    assert set_event_loader(acc, Watcher())
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("val/x")] == [(7, 0.5)]
