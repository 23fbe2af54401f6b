"""Bad input through the real command line: every user mistake is ONE line on stderr and exit code 2.

Each case runs ``genlab train|sample|eval`` in-process (``main([...])``) and checks: exit code 2, exactly one
non-empty stderr line ``genlab <cmd>: error: ...`` holding a specific needle (the key and what is wrong),
no traceback, and (train) no half-made run directory. One tiny real ring-GAN run per module supplies the
checkpoint for the cases that need a real one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from runs_util import RING_GAN, run_cli, run_train, short, tree


def assert_one_line(code: int, err: str, command: str, needle: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), err
    assert lines[0].startswith(f"genlab {command}: error: "), err
    assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory) -> Path:
    """One tiny trained ring GAN (4 steps, checkpoints at 2 and 4)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("bad_inputs") / "run"
        run_train(run_dir, *RING_GAN, *short(4, 2), "threads=1")
    finally:
        torch.set_num_threads(before)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    return run_dir


@pytest.fixture(scope="module")
def ckpt(ring_run) -> Path:
    return ring_run / "checkpoints" / "last.ckpt"


@pytest.fixture
def regular_file(tmp_path) -> Path:
    """A regular file: a directory path under it can never be created (NotADirectoryError, even as root)."""
    path = tmp_path / "plain.txt"
    path.write_text("not a directory\n")
    return path


# ---- genlab train ---------------------------------------------------------------------------------
# (overrides, needle); "{file}" is replaced by a regular file's path
TRAIN_CASES = [
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' has the wrong type: expected int"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval=0 must be a whole number of steps >= 1"),
    (
        ["+callbacks.model_checkpoint.every_n_stepz=5"],
        "callbacks.model_checkpoint.every_n_stepz is not a known key of callbacks.model_checkpoint",
    ),
    (["seed=-1"], "seed=-1 must be a whole number in [0, 2**32)"),
    (["seed=abc"], "seed='abc' has the wrong type: expected int"),
    (["threads=0"], "threads=0 must be a finite number >= 1"),
    (["experiment=nosuch"], "experiment=nosuch is not a known option; allowed:"),
    (["hydra.run.dir="], "hydra.run.dir is empty; pass a directory"),
    (["hydra.run.dir=''"], "hydra.run.dir is empty; pass a directory"),
    (["paths.output_dir="], "paths.output_dir is empty"),
    (["hydra.run.dir={file}/run"], "cannot write {file}/run: Not a directory"),
    (["optimizer.lr=inf"], "optimizer.lr=inf must be a finite number > 0"),
    (["optimizer.lr=nan"], "optimizer.lr=nan must be a finite number > 0"),
    (["trainer.precision=8"], "trainer.precision=8 has the wrong type: expected 64 | 32 | 16"),
    (["trainer.strategy=nosuch"], "trainer.strategy='nosuch' is not known; allowed: auto"),
    (["trainer.devices=0"], "trainer.devices=0 must be a count >= 1, -1 (all), auto"),
    (["+callbacks.evil._target_=os.system"], "callbacks.evil is not a known callback; allowed:"),
    (["+logger.x.save_dir=."], "logger.x is not a known logger; allowed:"),
    (["+foo=1"], "foo is not a known key of a genlab run; allowed top-level keys:"),
    (["model.g_width=100000000"], "model=gan as configured"),
    (["dataset=shapes", "dataset.n_train=10000000000"], "dataset=shapes in memory needs about"),
    (
        ["trainer=ddp_cpu", "dataset.batch_size=33"],
        "dataset.batch_size=33 is global and must divide evenly over the 2 processes",
    ),
    (["dataset=mnist", "paths.data_dir={file}"], "is not a readable directory"),
    (
        ["dataset=mnist", "dataset.download=false", "paths.data_dir=/nonexistent"],
        "paths.data_dir='/nonexistent' does not exist and dataset.download=false",
    ),
    (
        ["trainer.accelerator=cpu", "trainer.devices=[0,0]"],
        "trainer: `devices` selected with `CPUAccelerator`",
    ),
    (["model.g_hidden=[a]"], "model.g_hidden[0]='a' has the wrong type: expected list[int]"),
    (["dataset=1"], "dataset=1 is not an option of dataset; allowed: celeba"),
    (["trainer=null"], "trainer=null is not an option of trainer; allowed: cpu"),
    (["logger=[1]"], "logger=[1] is not an option of logger; allowed: csv"),
    (["--nosuch"], "unrecognized arguments: --nosuch"),
    (["seed=1", "--cfg", "job", "seed=2"], "unrecognized arguments: seed=2"),
    (["-m", "--cfg", "job"], "-m, --cfg cannot be combined"),
    (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path=/nonexistent/last.ckpt does not exist"),
    (["ckpt_path={file}", "dataset=ring", "model.net=mlp"], "cannot be read (truncated, damaged"),
]


@pytest.mark.parametrize(("args", "needle"), TRAIN_CASES, ids=[" ".join(a) for a, _ in TRAIN_CASES])
def test_train_bad_input(capsys, tmp_path, regular_file, args, needle):
    args = [a.replace("{file}", str(regular_file)) for a in args]
    code, _, err = run_cli(capsys, "train", f"hydra.run.dir={tmp_path}/run", *args)
    line = assert_one_line(code, err, "train", needle.replace("{file}", str(regular_file)))
    if "g_width=100000000" in " ".join(args):
        assert "needs about" in line
    assert not (tmp_path / "run").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


# ---- genlab train resume= ---------------------------------------------------------------------------
@pytest.fixture
def run_copy(ring_run, tmp_path) -> Path:
    """A private copy of the trained run (a refused resume must leave it as it was)."""
    copy = tmp_path / "copy"
    shutil.copytree(ring_run, copy)
    return copy


def fake_run(tmp_path: Path, overrides: str, with_ckpt: Path | None = None) -> Path:
    run = tmp_path / "fake"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(overrides)
    if with_ckpt is not None:
        (run / "checkpoints").mkdir()
        shutil.copyfile(with_ckpt, run / "checkpoints" / "last.ckpt")
    return run


def resume_fails(capsys, run: Path, needle: str, *extra: str) -> str:
    before = tree(run)
    code, _, err = run_cli(capsys, "train", f"resume={run}", *extra)
    line = assert_one_line(code, err, "train", needle)
    assert tree(run) == before  # nothing written, nothing moved
    return line


def test_resume_of_a_dir_that_is_not_a_run(capsys, tmp_path):
    (tmp_path / "somefile").write_text("x")
    resume_fails(capsys, tmp_path, "is not a genlab run directory (no .hydra/overrides.yaml)")


def test_resume_of_a_missing_dir(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", f"resume={tmp_path}/nosuch")
    assert_one_line(code, err, "train", "is not a genlab run directory")
    assert not (tmp_path / "nosuch").exists()


def test_resume_empty(capsys):
    code, _, err = run_cli(capsys, "train", "resume= ")
    assert_one_line(code, err, "train", "resume= is empty")


def test_resume_of_a_run_without_checkpoints(capsys, tmp_path):
    run = fake_run(tmp_path, "- dataset=ring\n")
    resume_fails(capsys, run, "has no checkpoints/last.ckpt yet")
    assert sorted(p.name for p in run.iterdir()) == [".hydra"]


def test_resume_with_an_architecture_change_is_refused(capsys, run_copy):
    line = resume_fails(capsys, run_copy, "cannot resume", "model.latent_dim=8")
    assert "model.latent_dim" in line and "4" in line and "8" in line


def test_resume_from_a_damaged_last_ckpt(capsys, run_copy):
    last = run_copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    resume_fails(capsys, run_copy, "last.ckpt cannot be read (truncated, damaged or not a PyTorch file")


def test_resume_replays_no_target_override(capsys, tmp_path, ckpt):
    run = fake_run(tmp_path, "- dataset=ring\n- +callbacks.x._target_=os.system\n", ckpt)
    resume_fails(capsys, run, "'+callbacks.x._target_=os.system', which genlab does not replay")


def test_resume_replays_no_hydra_override(capsys, tmp_path, ckpt):
    run = fake_run(tmp_path, "- hydra.job.name=evil\n", ckpt)
    resume_fails(capsys, run, "'hydra.job.name=evil', which genlab does not replay")


def test_resume_with_overrides_that_are_not_yaml(capsys, tmp_path, ckpt):
    run = fake_run(tmp_path, "- [unclosed\n  : {{\n", ckpt)
    resume_fails(capsys, run, "overrides.yaml cannot be read")


def test_resume_with_overrides_that_are_not_a_list(capsys, tmp_path, ckpt):
    run = fake_run(tmp_path, "dataset: ring\n", ckpt)
    resume_fails(capsys, run, "overrides.yaml is not a list of overrides")


def test_resume_with_an_unparsable_override(capsys, tmp_path, ckpt):
    run = fake_run(tmp_path, "- 'seed=['\n", ckpt)
    resume_fails(capsys, run, "holds an override that cannot be parsed")


# ---- genlab sample ----------------------------------------------------------------------------------
# (args, needle); "{ckpt}" is the real checkpoint, "{tmp}" the test's tmp dir, "{file}" a regular file
SAMPLE_CASES = [
    (["out={tmp}/x.npy"], "ckpt is required: pass ckpt=<value>"),
    (["ckpt=", "out={tmp}/x.npy"], "ckpt is required: genlab sample ckpt="),
    (["ckpt={tmp}/nosuch.ckpt", "out={tmp}/x.npy"], "ckpt={tmp}/nosuch.ckpt does not exist"),
    (["ckpt={tmp}", "out={tmp}/x.npy"], "ckpt={tmp} is a directory, not a checkpoint file"),
    (["ckpt={file}", "out={tmp}/x.npy"], "ckpt={file} cannot be read (truncated, damaged"),
    (["ckpt={ckpt}", "n=0", "out={tmp}/x.npy"], "n=0 must be a finite number >= 1"),
    (["ckpt={ckpt}", "n=abc", "out={tmp}/x.npy"], "n='abc' has the wrong type: expected int"),
    (["ckpt={ckpt}", "n=10000000000000", "out={tmp}/x.npy"], "n=10000000000000 samples needs about"),
    (["ckpt={ckpt}", "out={tmp}/x.jpg"], "out={tmp}/x.jpg: the file must end in .png (grid) or .npy"),
    (["ckpt={ckpt}", "out={tmp}/x.png"], "out={tmp}/x.png is a PNG grid but this model generates 2D points"),
    (
        ["ckpt={ckpt}", "seed=99999999999999999999999", "out={tmp}/x.npy"],
        "seed=99999999999999999999999 must be",
    ),
    (["ckpt={ckpt}", "mode=nosuch", "out={tmp}/x.npy"], "mode='nosuch' is not known; allowed: prior"),
    (
        ["ckpt={ckpt}", "mode=reconstruct", "out={tmp}/x.npy"],
        "mode=reconstruct needs an autoencoder; ckpt={ckpt} is a gan",
    ),
    (["ckpt={ckpt}", "nrow=0", "out={tmp}/x.npy"], "nrow=0 must be a finite number >= 1"),
    (["ckpt={ckpt}", "device=tpu", "out={tmp}/x.npy"], "device='tpu' is not known; allowed: auto, cpu, cuda"),
    # checked before the checkpoint is read: the (missing) checkpoint is never looked at
    (
        ["ckpt={tmp}/nosuch.ckpt", "out={file}/x.png"],
        "out={file}/x.png cannot be written ({file} is not a directory)",
    ),
    (
        ["ckpt={tmp}/nosuch.ckpt", "out={file}/sub/x.png"],
        "out={file}/sub/x.png cannot be written (Not a directory)",
    ),
    (["ckpt={ckpt}", "out={tmp}/x.npy", "+foo=1"], "foo is not a known key; allowed keys: ckpt, n, out"),
]


@pytest.mark.parametrize(("args", "needle"), SAMPLE_CASES, ids=[" ".join(a) for a, _ in SAMPLE_CASES])
def test_sample_bad_input(capsys, tmp_path, regular_file, ckpt, args, needle):
    subst = {"{ckpt}": str(ckpt), "{tmp}": str(tmp_path), "{file}": str(regular_file)}

    def fill(text: str) -> str:
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    code, out, err = run_cli(capsys, "sample", *map(fill, args))
    assert_one_line(code, err, "sample", fill(needle))
    assert "wrote" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]  # no output, no probe file left


@pytest.mark.parametrize("command,name", [("sample", "x.npy"), ("eval", "e.json")])
def test_an_output_that_is_a_directory_is_refused_before_any_work(capsys, tmp_path, ckpt, command, name):
    (tmp_path / name).mkdir()
    code, out, err = run_cli(capsys, command, f"ckpt={ckpt}", f"out={tmp_path / name}")
    assert_one_line(code, err, command, f"out={tmp_path / name} is a directory; pass a file name inside it")
    assert "wrote" not in out and not any((tmp_path / name).iterdir())


# ---- genlab eval ------------------------------------------------------------------------------------
EVAL_CASES = [
    (["out={tmp}/e.json"], "ckpt is required: pass ckpt=<value>"),
    (["ckpt=''", "out={tmp}/e.json"], "ckpt is required: genlab eval ckpt="),
    (["ckpt={tmp}/nosuch.ckpt", "out={tmp}/e.json"], "ckpt={tmp}/nosuch.ckpt does not exist"),
    (
        ["ckpt={ckpt}", "eval.n_samples=3", "out={tmp}/e.json"],
        "eval.n_samples=3 must be a finite number >= 6",
    ),
    (
        ["ckpt={ckpt}", "eval.features=nosuch", "out={tmp}/e.json"],
        "eval.features='nosuch' is not known; allowed: inception",
    ),
    (
        ["ckpt={ckpt}", "eval.metrics=[nosuch]", "out={tmp}/e.json"],
        "eval.metrics: 'nosuch' is not known; allowed:",
    ),
    (
        ["ckpt={ckpt}", "eval.metrics=[fid]", "out={tmp}/e.json"],
        "eval.metrics: fid needs images but ring is 2D",
    ),
    (
        ["ckpt={ckpt}", "eval.metrics=[]", "out={tmp}/e.json"],
        "eval.metrics=[] must be auto or a non-empty list",
    ),
    (
        ["ckpt={ckpt}", "eval.n_samples=100000000000", "out={tmp}/e.json"],
        "eval.n_samples=100000000000 needs about",
    ),
    (
        ["ckpt={ckpt}", "eval.batch_size=0", "out={tmp}/e.json"],
        "eval.batch_size=0 must be a finite number >= 1",
    ),
    (
        ["ckpt={ckpt}", "eval.batch_size=abc", "out={tmp}/e.json"],
        "eval.batch_size='abc' has the wrong type: expected int",
    ),
    (
        ["ckpt={ckpt}", "eval.seed=-1", "out={tmp}/e.json"],
        "eval.seed=-1 must be a whole number in [0, 2**32)",
    ),
    (["ckpt={ckpt}", "eval=abc", "out={tmp}/e.json"], "eval='abc' must be a mapping of keys to values"),
    (["ckpt={ckpt}", "eval.device=tpu", "out={tmp}/e.json"], "eval.device='tpu' is not known"),
    (["ckpt={ckpt}", "out={file}/e.json"], "out={file}/e.json cannot be written ({file} is not a directory)"),
    (["ckpt={ckpt}", "eval.foo=1", "out={tmp}/e.json"], "eval.foo is not a known key"),
    (["ckpt={ckpt}", "+eval.foo=1", "out={tmp}/e.json"], "eval.foo is not a known key of eval"),
]


@pytest.mark.parametrize(("args", "needle"), EVAL_CASES, ids=[" ".join(a) for a, _ in EVAL_CASES])
def test_eval_bad_input(capsys, tmp_path, regular_file, ckpt, args, needle):
    subst = {"{ckpt}": str(ckpt), "{tmp}": str(tmp_path), "{file}": str(regular_file)}

    def fill(text: str) -> str:
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    code, out, err = run_cli(capsys, "eval", *map(fill, args))
    assert_one_line(code, err, "eval", fill(needle))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]
    assert not (ckpt.parent / "eval.json").exists()


def test_the_real_checkpoint_itself_is_fine(capsys, tmp_path, ckpt):
    """The cases above fail for their own reason: the same checkpoint samples fine."""
    code, out, err = run_cli(capsys, "sample", f"ckpt={ckpt}", "n=8", f"out={tmp_path}/x.npy", "device=cpu")
    assert code == 0, err
    assert (tmp_path / "x.npy").is_file()
