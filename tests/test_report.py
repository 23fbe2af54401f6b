"""`genlab report`: the leaderboard, page, CSV and markdown of real tiny runs (a 4-job grid sweep, a run that
crashed, a run that was interrupted, an Optuna sweep), and one-line errors / marked rows for bad inputs."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import pytorch_lightning as pl
from runs_util import RING_GAN, SHAPES_GAN, SHAPES_VAE, run_cli, short
from stopper import interrupt_at

import genlab.run.train
from genlab.cli import main
from genlab.report import leaderboard as lb
from genlab.report.runs import read_run

METRIC = "val/d_real"
# every run shares these; the checkpoint callback watches the metric with mode=max, so higher ranks first
COMMON = [
    *SHAPES_GAN,
    *short(4, 2),
    "threads=1",
    f"optimized_metric={METRIC}",
    f"callbacks.model_checkpoint.monitor={METRIC}",
    "callbacks.model_checkpoint.mode=max",
]
SETTINGS = ["model.loss", "model.ema"]
IMG_SRC = re.compile(r'<img src="([^"]*)"')


class Crash(pl.Callback):
    """A crash in the middle of training (as a CUDA OOM would be)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == 2:
            raise RuntimeError("boom: injected crash at step 2")


def quiet_main(*args: str) -> int | str | None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return main(list(args))
        except SystemExit as e:
            return e.code


def job(runs: Path, number: str) -> Path:
    """A sweep job's directory: ``<number>_<swept key>:<value>+...``."""
    (found,) = (runs / "sweep").glob(f"{number}_*")
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """root/sweep/{0..3} (loss x ema), root/failed (crashed at step 2), root/interrupted (SIGTERM at step 2)."""
    root = tmp_path_factory.mktemp("report_runs")
    code = quiet_main(
        "train",
        "-m",
        f"hydra.sweep.dir={root / 'sweep'}",
        *COMMON,
        "model.loss=ns,hinge",
        "model.ema=true,false",
    )
    assert code in (None, 0)
    with pytest.MonkeyPatch.context() as patch:
        build = genlab.run.train.build_callbacks
        patch.setattr(genlab.run.train, "build_callbacks", lambda run: [*build(run), Crash()])
        with pytest.raises(RuntimeError, match="boom"):
            main(
                ["train", f"hydra.run.dir={root / 'failed'}", *COMMON, "model.loss=hinge", "model.ema=false"]
            )
    with pytest.MonkeyPatch.context() as patch:
        interrupt_at(patch, 2)
        code = quiet_main(
            "train", f"hydra.run.dir={root / 'interrupted'}", *COMMON, "model.loss=ns", "model.ema=true"
        )
    assert code == 143
    return root


@pytest.fixture(scope="module")
def report(runs) -> Path:
    """The page of all six runs; what the command printed is in out/stdout.txt."""
    out = runs / "out" / "page.html"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            ["report", str(runs / "sweep"), str(runs / "failed"), str(runs / "interrupted"), f"out={out}"]
        )
    assert code in (None, 0)
    (out.parent / "stdout.txt").write_text(stdout.getvalue())
    return out


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def job_dirs(root: Path) -> list[Path]:
    return [*(job(root, str(i)) for i in range(4)), root / "failed", root / "interrupted"]


def test_writes_page_csv_and_markdown_and_prints_the_leaderboard(report):
    assert (
        report.is_file()
        and (report.parent / "leaderboard.csv").is_file()
        and (report.parent / "report.md").is_file()
    )
    stdout = (report.parent / "stdout.txt").read_text()
    header = stdout.splitlines()[0].split()
    assert header[:5] == ["#", "run", *SETTINGS, METRIC]
    assert len(stdout.splitlines()) == 1 + 6 + 1
    assert "failed: boom: injected crash at step 2" in stdout
    assert f"wrote {report}, leaderboard.csv and report.md beside it" in stdout


def test_leaderboard_rows_columns_order_and_status_match_the_runs(runs, report):
    header, rows = read_csv(report.parent / "leaderboard.csv")
    # only the overrides that differ between the runs, then the ranking metric first among the metrics
    assert header[:5] == ["rank", "run", *SETTINGS, METRIC]
    assert not {"dataset", "model.g_width", "threads", "optimized_metric", "trainer.max_steps"} & set(header)
    jobs = {f"sweep/{job(runs, n).name}" for n in "0123"}
    assert {r["run"] for r in rows} == {*jobs, "failed", "interrupted"}
    by_name = {r["run"]: r for r in rows}
    expected = {}
    for path in job_dirs(runs):
        row = by_name[str(path.relative_to(runs))]
        status = json.loads((path / "status.json").read_text())
        assert row["status"] == status["status"]
        overrides = (
            (path / ".hydra" / "overrides.yaml").read_text().lower()
        )  # a sweep writes True, a user true
        assert (
            f"model.loss={row['model.loss']}" in overrides
            and f"model.ema={row['model.ema']}".lower() in overrides
        )
        if (path / "metrics.json").is_file():
            metrics = json.loads((path / "metrics.json").read_text())
            assert int(row["steps"]) == metrics["global_step"]
            for key, value in metrics.items():
                if key.startswith(("val/", "train/")):
                    assert float(row[key]) == value, (path, key)
            expected[row["run"]] = metrics.get(METRIC)
    assert sorted(r["status"] for r in rows) == [
        "failed",
        "finished",
        "finished",
        "finished",
        "finished",
        "interrupted",
    ]
    assert by_name["failed"]["error"] == "boom: injected crash at step 2"
    # best first for a metric the checkpoint callback maximizes; the crashed run has no final value: last
    scored = [r["run"] for r in rows if expected.get(r["run"]) is not None]
    assert scored == sorted(expected, key=lambda name: -expected[name])
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 7)]
    assert rows[-1]["run"] == "failed"


def test_every_image_in_the_page_decodes_and_nothing_is_fetched(report):
    from PIL import Image

    html = report.read_text()
    sources = IMG_SRC.findall(html)
    root = report.parent.parent
    n_tags = len({t for p in (root / "sweep").glob("[0-3]_*") for t in _tags(p)})
    n_grids = len(list(root.glob("*/samples"))) + len(list(root.glob("sweep/*/samples")))
    assert n_grids == 5  # the crashed run saved none
    assert (
        len(sources) == n_tags + n_grids + 2
    )  # a curve per tag, a grid per run, metric vs each swept setting
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True))) as img:
            img.verify()
    outside_pre = re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)
    for attr in re.findall(r'(?:src|href)="([^"]*)"', outside_pre):
        assert attr.startswith(("data:", "#")), attr
    assert "http://" not in outside_pre and "https://" not in outside_pre
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "Grid: " in html and "model.loss" in html and "boom: injected crash at step 2" in html
    assert "genlab train resume=" in html  # the interrupted run says how to continue


def _tags(run_dir: Path) -> list[str]:
    from genlab.report.scalars import read_curves

    return list(read_curves(run_dir).scalars)


def test_markdown_and_csv_content(runs, report):
    md = (report.parent / "report.md").read_text()
    assert f"Ranked by `{METRIC}` (higher is better; callbacks.model_checkpoint.mode)" in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[0].startswith(f"| # | run | model.loss | model.ema | {METRIC} ↑ |")
    assert len(table) == 2 + 6
    _, rows = read_csv(report.parent / "leaderboard.csv")
    for line, row in zip(table[2:], rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:4] == [row["rank"], row["run"], row["model.loss"], row["model.ema"]]
        assert cells[4].rstrip("*") == (lb.fmt(float(row[METRIC])) if row[METRIC] else "")
    assert "- #6 `failed` (failed): boom: injected crash at step 2" in md
    assert "`genlab train dataset=shapes model=gan " in md and "model.loss=ns model.ema=true`" in md


def test_health_column_and_damaged_files_mark_their_rows(runs, tmp_path, capsys):
    """health.json (hand-written, the agreed format) -> a health column; a corrupt metrics.json, missing event
    files and a broken sample grid -> notes on those rows, no traceback."""
    for name in ("0", "1", "2", "3"):
        shutil.copytree(job(runs, name), tmp_path / name, ignore=shutil.ignore_patterns("*.ckpt"))
    for name, fired in (("0", False), ("1", True)):
        detector = {
            "name": "d_wins",
            "fired": fired,
            "first_step": 1200 if fired else None,
            "last_step": 3400 if fired else None,
            "message": "discriminator wins (D accuracy 0.99 for 2000 steps): try model.r1_gamma=1",
        }
        health = {"version": 1, "family": "gan", "healthy": not fired, "detectors": [detector]}
        (tmp_path / name / "health.json").write_text(json.dumps(health))
    (tmp_path / "1" / "samples" / "samples_step0000004.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "2" / "metrics.json").write_text('{"val/d_real": 0.5, ')
    shutil.rmtree(tmp_path / "3" / "tensorboard")
    code, stdout, stderr = run_cli(capsys, "report", str(tmp_path))
    assert code == 0 and "Traceback" not in stderr
    assert "health" in stdout.splitlines()[0]
    _, rows = read_csv(tmp_path / "leaderboard.csv")
    by_name = {r["run"]: r for r in rows}
    assert {name: r["health"] for name, r in by_name.items()} == {
        "0": "ok",
        "1": "d_wins",
        "2": "ok",  # the health monitor's own verdict, written by the run
        "3": "ok",
    }
    assert "metrics.json unreadable" in by_name["2"]["notes"]
    assert by_name["2"]["status"] == "finished" and by_name["2"][METRIC]  # the curves' latest value instead
    assert "no event files" in by_name["3"]["notes"]
    assert by_name["3"][METRIC]  # the final value from metrics.json still ranks it
    html = (tmp_path / "report.html").read_text()
    assert re.search(
        r"<details class=\"health-fired\"><summary>d_wins</summary>.*steps 1200.*3400.*r1_gamma=1", html, re.S
    )
    assert "samples/samples_step0000004.png unreadable" in html


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["{empty}"], "no genlab runs under"),
        (["{empty}/nosuch"], "does not exist"),
        (["{empty}/*/x"], "matches nothing"),
        ([], "no run or sweep dir given"),
        (["{sweep}", "colour=red"], "colour= is not an option of genlab report"),
        (["{sweep}", "mode=best"], "mode=best is not a direction"),
        (["{sweep}", "jobs=0"], "jobs=0 must be a whole number"),
        (["{sweep}", "out={file}/page.html"], "cannot be written"),
        (["{sweep}", "--verbose"], "unknown flag --verbose"),
    ],
)
def test_bad_inputs_end_in_one_line(runs, tmp_path, capsys, args, needle):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    paths = {"empty": tmp_path / "empty", "sweep": runs / "sweep", "file": tmp_path / "file"}
    code, _, stderr = run_cli(capsys, "report", *(a.format(**paths) for a in args))
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genlab report: error: ") and needle in lines[0], stderr


def test_a_sweep_still_running_shows_what_exists(runs, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for name in ("0", "1"):
        shutil.copytree(job(runs, name), sweep / name, ignore=shutil.ignore_patterns("*.ckpt"))
    (sweep / "1" / "metrics.json").unlink()
    status = json.loads((sweep / "1" / "status.json").read_text())
    (sweep / "1" / "status.json").write_text(json.dumps({**status, "status": "running"}))
    (sweep / "2" / ".hydra").mkdir(parents=True)  # a job that has only just started
    shutil.copy(job(runs, "0") / ".hydra" / "overrides.yaml", sweep / "2" / ".hydra")
    code, stdout, _ = run_cli(capsys, "report", str(sweep))
    assert code == 0
    _, rows = read_csv(sweep / "leaderboard.csv")
    by_name = {r["run"]: r for r in rows}
    assert by_name["1"]["status"] == "running"
    assert "latest logged values" in by_name["1"]["notes"] and "no live process" in by_name["1"]["notes"]
    assert not read_run(sweep / "1").metrics and by_name["1"][METRIC]  # from the event files
    assert by_name["2"]["status"] == "unknown" and "no status.json" in by_name["2"]["notes"]
    assert "*" in stdout  # the latest-value marker


def test_vae_reconstructions_and_csv_logger_curves(tmp_path, capsys):
    from genlab.report.scalars import read_curves

    run = tmp_path / "vae"
    code = quiet_main("train", f"hydra.run.dir={run}", *SHAPES_VAE, *short(4, 2), "threads=1", "logger=many")
    assert code in (None, 0)
    code, stdout, _ = run_cli(capsys, "report", str(run))
    assert code == 0
    html = (run / "report.html").read_text()
    assert "reconstructions, step 4" in html and "samples, step 4" in html
    assert "val/neg_elbo ↓" in stdout  # the VAE's own monitor, lower is better
    from_events = read_curves(run)
    shutil.rmtree(run / "tensorboard")  # now only csv/metrics.csv holds the curves
    from_csv = read_curves(run)
    assert from_csv.source == "csv" and from_csv.note is None
    for tag in ("val/neg_elbo", "train/loss"):
        assert from_csv.scalars[tag][0] == from_events.scalars[tag][0]
        assert from_csv.scalars[tag][1] == pytest.approx(from_events.scalars[tag][1])


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp("optuna") / "sweep"
    code = quiet_main(
        "train",
        "hparams_search=gan_optuna",
        f"hydra.sweep.dir={sweep}",
        *RING_GAN,
        *short(4, 2),
        "threads=1",
        "optimized_metric=val/loss_d",
        "hydra.sweeper.direction=minimize",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=3",
    )
    assert code in (None, 0)
    return sweep


def test_optuna_sweep_history_and_importances(optuna_sweep, capsys):
    code, _, _ = run_cli(capsys, "report", str(optuna_sweep))
    assert code == 0
    html = (optuna_sweep / "report.html").read_text()
    assert "Optuna sweep: " in html and "best_value" in html
    assert 'alt="optimization history"' in html and 'alt="metric against each parameter"' in html
    assert 'alt="parameter importances"' in html or "parameter importances: " in html
    _, rows = read_csv(optuna_sweep / "leaderboard.csv")
    values = [float(r["val/loss_d"]) for r in rows]
    assert values == sorted(values)  # the sweeper minimizes
    assert set(read_csv(optuna_sweep / "leaderboard.csv")[0][2:5]) == {
        "optimizer.lr",
        "model.pack",
        "model.r1_gamma",
    }


def test_event_reading_equals_tensorboards_own(runs):
    """The checksum-on-failure loader gives EventAccumulator exactly what tensorboard's own reader gives."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    from genlab.report.events import accumulator

    guidance = {ea.SCALARS: 0, ea.IMAGES: 1}
    for run_dir in (job(runs, "0"), runs / "interrupted"):
        stock = ea.EventAccumulator(str(run_dir / "tensorboard"), size_guidance=guidance)
        stock.Reload()
        fast = accumulator(run_dir / "tensorboard", guidance)
        assert fast.Tags() == stock.Tags() and stock.Tags()["scalars"]
        for tag in stock.Tags()["scalars"]:
            assert [(e.step, e.value) for e in fast.Scalars(tag)] == [
                (e.step, e.value) for e in stock.Scalars(tag)
            ]
        for tag in stock.Tags()["images"]:
            assert fast.Images(tag)[-1].encoded_image_string == stock.Images(tag)[-1].encoded_image_string


def test_damaged_and_half_written_event_files(runs, tmp_path):
    from genlab.report.scalars import read_curves

    shutil.copytree(job(runs, "0"), tmp_path / "run", ignore=shutil.ignore_patterns("*.ckpt"))
    events = max(
        (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"), key=lambda p: p.stat().st_size
    )
    whole = read_curves(tmp_path / "run")
    data = events.read_bytes()
    events.write_bytes(data[: len(data) - 7])  # the last record still being written
    half = read_curves(tmp_path / "run")
    assert half.note is None and set(half.scalars) <= set(whole.scalars) and half.scalars
    damaged = bytearray(data)
    damaged[0] ^= 0xFF  # the first record's length no longer matches its checksum
    events.write_bytes(bytes(damaged))
    assert "bad length checksum" in read_curves(tmp_path / "run").note


def test_ranking_direction_sources():
    from genlab.report.runs import Run

    def run(**config) -> Run:
        return Run(path=Path("x"), config=config)

    assert lb.resolve_ranking([run(optimized_metric="val/hq_fraction")], None, None).mode == "max"
    assert lb.resolve_ranking(
        [run(optimized_metric="${model.monitor}", model={"monitor": "val/fid"})], None, None
    ) == lb.Ranking("val/fid", "min", "genlab's metric catalogue")
    assert lb.resolve_ranking([run()], "val/custom", "max").mode == "max"
    assert "assumed" in lb.resolve_ranking([run()], "val/custom", None).source
    assert lb.resolve_ranking([run()], None, None).metric is None
    assert lb.fmt_time(59.6) == "1m00s" and lb.fmt_time(3725) == "1h02m" and lb.fmt_time(None) == ""


def test_a_sweep_ranked_by_conditional_accuracy_puts_the_highest_first(tmp_path, capsys):
    """A higher-is-better metric of the catalogue that no run's config gives a direction for."""
    metric = "val/conditional_accuracy"
    for name, value in (("a", 0.41), ("b", 0.93), ("c", 0.67)):
        run = tmp_path / "sweep" / name
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(f"- model.lr_g={value}\n")
        (run / ".hydra" / "config.yaml").write_text(f"optimized_metric: {metric}\n")
        (run / "metrics.json").write_text(json.dumps({metric: value, "global_step": 10}))
    code, stdout, _ = run_cli(capsys, "report", str(tmp_path / "sweep"))
    assert code == 0
    _, rows = read_csv(tmp_path / "sweep" / "leaderboard.csv")
    assert [(r["rank"], r["run"]) for r in rows] == [("1", "b"), ("2", "c"), ("3", "a")]
    assert f"{metric} ↑" in stdout.splitlines()[0]


def test_cli_help_lists_report(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "  report " in out
    code, out, _ = run_cli(capsys, "report", "--help")
    assert code == 0 and "out=<file>" in out


@pytest.mark.slow
def test_page_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium binary on PATH (Debian: apt-get install chromium)")
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # tests may run as root in a container
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1400,3000",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1400, 3000)
        colours = rgb.getcolors(maxcolors=1 << 24)
    assert len(colours) > 500  # text, status badges, plots and sample grids; a blank page has one colour
    most = max(count for count, _ in colours)
    assert most < 0.9 * 1400 * 3000


# ---- run directories and outputs are not the report's to trust -----------------------------------
def copy_jobs(runs: Path, dest: Path, names=("0", "1", "2", "3")) -> None:
    for name in names:
        shutil.copytree(job(runs, name), dest / name, ignore=shutil.ignore_patterns("*.ckpt"))


def test_report_overwrites_only_its_own_files(runs, tmp_path, capsys):
    copy_jobs(runs, tmp_path, ("0",))
    notes, md = tmp_path / "notes.html", tmp_path / "report.md"
    notes.write_text("my notes, not a report\n")
    md.write_text("# my own report.md\n")
    code, _, err = run_cli(capsys, "report", str(tmp_path / "0"), f"out={notes}")
    assert (
        code == 2 and err.count("\n") == 1 and "was not written by genlab report" in err and str(notes) in err
    )
    code, _, err = run_cli(capsys, "report", str(tmp_path / "0"), f"out={tmp_path / 'page.html'}")
    assert code == 2 and f"{md} exists and was not written by genlab report" in err
    assert notes.read_text() == "my notes, not a report\n" and md.read_text() == "# my own report.md\n"
    assert not (tmp_path / "page.html").exists() and not (tmp_path / "leaderboard.csv").exists()
    md.unlink()
    for _ in range(2):  # its own files are its to replace
        code, _, err = run_cli(capsys, "report", str(tmp_path / "0"), f"out={tmp_path / 'page.html'}")
        assert code == 0, err
    assert (tmp_path / "report.md").read_text().startswith("# genlab report\n")


def test_crafted_run_dirs_cost_a_note_never_a_hang(runs, tmp_path):
    """A sample grid that is a link to /dev/zero, a FIFO for .hydra/config.yaml and a 200k-deep metrics.json:
    the report finishes in seconds, notes each, and still shows every run."""
    copy_jobs(runs, tmp_path)
    (tmp_path / "0" / "samples" / "samples_step9999999.png").symlink_to("/dev/zero")
    (tmp_path / "1" / ".hydra" / "config.yaml").unlink()
    os.mkfifo(tmp_path / "1" / ".hydra" / "config.yaml")
    (tmp_path / "2" / "metrics.json").write_text("[" * 200_000 + "]" * 200_000)
    result: dict = {}

    def report() -> None:
        result["code"] = quiet_main("report", str(tmp_path))

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "genlab report hung on a crafted run dir"
    assert result["code"] in (None, 0)
    _, rows = read_csv(tmp_path / "leaderboard.csv")
    notes = {r["run"]: r["notes"] for r in rows}
    assert set(notes) == {"0", "1", "2", "3"}
    assert ".hydra/config.yaml unreadable (not a regular file)" in notes["1"]
    assert "metrics.json unreadable (nested deeper than" in notes["2"]
    assert (
        "samples/samples_step9999999.png unreadable (a link or not a regular file)"
        in (tmp_path / "report.html").read_text()
    )
