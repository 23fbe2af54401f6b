"""The private Lightning/Hydra/PyTorch details in genlab/utils/compat.py still hold in the installed versions."""

import importlib
import inspect

import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies.launchers import multiprocessing as spawn_launcher
from torch.utils.data import DataLoader, TensorDataset
from trainers import bare_trainer

from genlab.run.callbacks.checkpoint_io import AtomicCheckpointIO
from genlab.utils.compat import (
    SPAWN_RESULTS_NAME,
    exclude_from_global_step,
    hydra_args_parser,
    logs_kept_this_step,
    save_last_checkpoint,
    set_last_lr,
    summary_file_writer,
)


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


class TwoOptimizers(pl.LightningModule):
    """Manual optimization stepping two optimizers per batch, the second kept out of the step count."""

    def __init__(self, exclude: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
        self.exclude = exclude
        self.batches = 0

    def training_step(self, batch, batch_idx):
        self.batches += 1
        opt_a, opt_b = self.optimizers()
        if self.exclude:
            exclude_from_global_step(opt_b)
        for net, opt in ((self.b, opt_b), (self.a, opt_a)):
            opt.zero_grad()
            self.manual_backward(net(batch[0]).pow(2).mean())
            opt.step()

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), lr=0.01), torch.optim.SGD(self.b.parameters(), lr=0.01)]

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=4)


def test_exclude_from_global_step_counts_only_the_other_optimizer():
    counted, excluded = TwoOptimizers(exclude=False), TwoOptimizers(exclude=True)
    bare_trainer(6).fit(counted)
    bare_trainer(6).fit(excluded)
    assert counted.batches == 3  # both optimizers' steps counted: 6 steps in 3 batches
    assert excluded.batches == 6  # one counted step per batch


def test_save_last_checkpoint_writes_the_current_step_once(tmp_path):
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=4)
    trainer = bare_trainer(6, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(RecordsKeptSteps())
    last = tmp_path / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 4  # the last interval save
    assert save_last_checkpoint(checkpoint, trainer)
    assert torch.load(last, weights_only=False)["global_step"] == 6
    assert checkpoint.last_model_path == str(last)
    assert not save_last_checkpoint(checkpoint, trainer)  # already holds this step


def test_hydra_args_parser_is_the_one_hydra_main_reads_the_command_line_with():
    hydra_main = importlib.import_module("hydra.main")
    assert "get_args_parser()" in inspect.getsource(hydra_main)
    args = ["-m", "--cfg", "job", "model=vae"]
    parsed = hydra_args_parser().parse_args(args)
    assert vars(parsed) == vars(hydra_main.get_args_parser().parse_args(args))
    assert parsed.multirun and parsed.cfg == "job" and parsed.overrides == ["model=vae"]
