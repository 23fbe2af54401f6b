"""A checkpoint is untrusted input: damaged files of every shape and crafted run records all end in genlab's
one-line CheckpointError, and a crafted record never gets anything imported, instantiated or opened."""

from __future__ import annotations

import io
import pickle
import random
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from runs_util import RING_GAN, SHAPES_VAE, rewritten_checkpoint, run_cli, run_train, short

from genlab.checkpoint import load_run
from genlab.utils.errors import CheckpointError


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fuzz") / "run"
    run_train(run, *RING_GAN, *short(2, 2), "threads=1")
    return run / "checkpoints" / "last.ckpt"


def damaged_files(original: bytes, where: Path) -> list[Path]:
    rng = random.Random(0)
    files: dict[str, bytes] = {}
    n = len(original)
    for length in sorted({0, 1, 2, 10, 100, *range(0, n, max(1, n // 250))}):  # every ~0.4% of the file
        files[f"trunc{length}"] = original[:length]
    for i in range(200):
        data = bytearray(original)
        for _ in range(1 + i % 4):
            pos = rng.randrange(n)
            data[pos] ^= 1 << rng.randrange(8)
        files[f"flip{i}"] = bytes(data)
    for i in range(80):
        files[f"random{i}"] = rng.randbytes(rng.choice([1, 7, 64, 512, 4096, n]))
    files["text"] = b"this is not a checkpoint\n" * 20
    files["json"] = b'{"genlab": {"format": 2}, "state_dict": {}}'
    for name, obj in {"odict": OrderedDict(a=1), "list": [1, 2, 3], "none": None}.items():
        files[f"pickle-{name}"] = pickle.dumps(obj)
        buf = io.BytesIO()
        torch.save(obj, buf)
        files[f"torch-{name}"] = buf.getvalue()
    paths = []
    for name, data in files.items():
        path = where / f"{name}.ckpt"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_damaged_files_all_end_in_a_checkpoint_error(ckpt, tmp_path):
    original = ckpt.read_bytes()
    reference = load_run(ckpt).model.state_dict()
    paths = damaged_files(original, tmp_path)
    assert len(paths) >= 500
    unchanged = 0
    for path in paths:
        try:
            loaded = load_run(path)
        except CheckpointError as e:
            assert "\n" not in str(e)
            continue
        # a flip in bytes that do not describe the model (zip padding and headers, optimizer and callback
        # state): the same model loads; flips in the weights or the run record are caught by its checksum
        assert path.name.startswith("flip"), path.name
        state = loaded.model.state_dict()
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], reference[k]) for k in state), path.name
        unchanged += 1
    flips = sum(p.name.startswith("flip") for p in paths)
    assert unchanged < flips // 2  # the rest of the flips land in the weights or the record and are caught


def altered(ckpt: Path, where: Path, name: str, change) -> Path:
    """A copy of ``ckpt`` changed by ``change``, its digests recomputed (a consistent forgery)."""
    return rewritten_checkpoint(ckpt, where / f"{name}.ckpt", change)


@pytest.mark.parametrize(
    ("name", "change", "needle"),
    [
        ("foreign", lambda d: d.pop("genlab"), "is not a genlab checkpoint"),
        ("format", lambda d: d["genlab"].update(format=1), "run record format 1"),
        ("family", lambda d: d["genlab"].update(family="vae"), "inconsistent run record"),
        (
            "shape",
            lambda d: d["state_dict"].update({k: torch.zeros(3) for k in list(d["state_dict"])[:1]}),
            "do not fit",
        ),
        ("extra", lambda d: d["state_dict"].update(extra=torch.zeros(1)), "do not fit"),
        ("missing", lambda d: d["state_dict"].pop(next(iter(d["state_dict"]))), "do not fit"),
        ("bad-config", lambda d: d["genlab"]["config"]["model"].update(latent_dim=-3), "invalid run config"),
        ("huge", lambda d: d["genlab"]["config"]["model"].update(g_hidden=[10**9, 10**9]), "needs about"),
    ],
)
def test_inconsistent_genlab_checkpoints_are_one_line(ckpt, tmp_path, name, change, needle):
    path = altered(ckpt, tmp_path, name, change)
    with pytest.raises(CheckpointError, match=needle) as info:
        load_run(path)
    assert "\n" not in str(info.value)


def test_a_record_naming_a_class_runs_nothing(ckpt, tmp_path, capsys):
    """The old attack: class and hyperparameters in the checkpoint -> subprocess.Popen(shell=True)."""
    pwned = tmp_path / "pwned"

    def attack(d):
        d["genlab"]["family"] = "subprocess.Popen"
        d["genlab"]["config"]["model"] = {
            "family": "subprocess.Popen",
            "args": f"touch {pwned}",
            "shell": True,
        }
        d["genlab"]["class"] = "subprocess.Popen"
        d["hyper_parameters"] = {"args": f"touch {pwned}", "shell": True}

    path = altered(ckpt, tmp_path, "popen", attack)
    for command in (["sample", f"ckpt={path}", f"out={tmp_path / 'x.npy'}"], ["eval", f"ckpt={path}"]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "model.family='subprocess.Popen'" in err
    assert not pwned.exists()


def test_a_record_naming_a_dataset_target_opens_nothing(ckpt, tmp_path, capsys):
    """The old attack: a dataset `_target_: builtins.open` with mode w truncated a victim file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")

    def attack(d):
        dataset = d["genlab"]["config"]["dataset"]
        dataset.update(_target_="builtins.open", file=str(victim), mode="w")

    path = altered(ckpt, tmp_path, "open", attack)
    for command in (
        ["sample", f"ckpt={path}", "mode=reconstruct", f"out={tmp_path / 'x.npy'}"],
        ["eval", f"ckpt={path}"],
    ):
        code, _, err = run_cli(capsys, *command)
        assert (
            code == 2 and len(err.strip().splitlines()) == 1 and "dataset._target_ is not a known key" in err
        )
    named = altered(
        ckpt, tmp_path, "open-name", lambda d: d["genlab"]["config"]["dataset"].update(name="builtins.open")
    )
    code, _, err = run_cli(capsys, "eval", f"ckpt={named}")
    assert code == 2 and "dataset.name='builtins.open' is not known" in err
    assert victim.read_text() == "precious"


def test_non_finite_weights_with_a_valid_checksum_are_refused(ckpt, tmp_path, capsys):
    """A checkpoint of NaN weights samples NaN images silently; the reader names the first bad tensor."""
    first = next(iter(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]))
    path = altered(ckpt, tmp_path, "nan", lambda d: d["state_dict"][first].view(-1)[0].fill_(float("nan")))
    for command in (["sample", f"ckpt={path}", f"out={tmp_path / 'x.npy'}"], ["eval", f"ckpt={path}"]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"its weight {first} holds NaN or inf values" in err
    assert not (tmp_path / "x.npy").exists() and not (tmp_path / "eval.json").exists()


@pytest.fixture(scope="module")
def vae_ckpt(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vae") / "run"
    run_train(run, *SHAPES_VAE, *short(2, 2), "threads=1")
    return run / "checkpoints" / "last.ckpt"


def test_a_stored_data_dir_is_neither_read_nor_written(vae_ckpt, tmp_path, capsys):
    """The data directory a checkpoint names is where it was trained, not where the command's data lives:
    sample mode=reconstruct and eval read (and cache) data in their own data_dir."""
    elsewhere, mine = tmp_path / "elsewhere", tmp_path / "mine"
    path = altered(
        vae_ckpt,
        tmp_path,
        "moved",
        lambda d: d["genlab"]["config"]["dataset"].update(data_dir=str(elsewhere)),
    )
    out = tmp_path / "recon.png"
    code, _, err = run_cli(
        capsys, "sample", f"ckpt={path}", "mode=reconstruct", "n=4", f"out={out}", f"data_dir={mine}"
    )
    assert code == 0, err
    assert out.is_file() and list((mine / "genlab_cache").glob("shapes-*.pt"))  # read from the command's dir
    code, _, err = run_cli(
        capsys,
        "eval",
        f"ckpt={path}",
        "eval.metrics=[likelihood]",
        "eval.n_samples=50",
        "eval.iw_samples=2",
        f"paths.data_dir={mine}",
        f"out={tmp_path / 'e.json'}",
    )
    assert code == 0, err
    assert not elsewhere.exists()


def test_replayed_overrides_naming_a_target_are_refused(ckpt, tmp_path, capsys):
    """The old attack: a crafted `.hydra/overrides.yaml` line instantiated a callback on `resume=`."""
    run = ckpt.parent.parent
    crafted = tmp_path / "crafted"
    import shutil

    shutil.copytree(run, crafted)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (crafted / ".hydra" / "overrides.yaml").write_text(
        f"- +callbacks.x._target_=builtins.open\n- +callbacks.x.file={victim}\n- +callbacks.x.mode=w\n"
    )
    before = sorted(p.name for p in crafted.rglob("*"))
    code, _, err = run_cli(capsys, "train", f"resume={crafted}")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not replay" in err
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in crafted.rglob("*")) == before


def test_replayed_overrides_do_not_choose_a_network_file(tmp_path, capsys):
    """A TorchScript Inception file is a program: a run directory's overrides do not get to name one."""
    from genlab.commands.replay import stored_overrides

    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "- dataset=ring\n- callbacks.eval_metrics.inception_weights=/tmp/planted.pt\n- trainer.max_steps=5\n"
    )
    assert stored_overrides(overrides) == ["dataset=ring", "trainer.max_steps=5"]
    assert (
        "not replaying 'callbacks.eval_metrics.inception_weights=/tmp/planted.pt'" in capsys.readouterr().err
    )
    for section in (
        "+callbacks.eval_metrics={inception_weights:/tmp/planted.pt}",
        "++callbacks={eval_metrics:{inception_weights:/p.pt}}",
    ):
        overrides.write_text(f"- dataset=ring\n- {section}\n")
        assert stored_overrides(overrides) == ["dataset=ring"], section


def test_replayed_overrides_refuse_a_target_inside_a_section_value(tmp_path):
    from genlab.commands.replay import UserError, stored_overrides

    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("- +callbacks.x={_target_:subprocess.Popen,args:[touch,/tmp/pwned]}\n")
    with pytest.raises(UserError, match="which genlab does not replay"):
        stored_overrides(overrides)
