"""The training health monitor: each detector on synthetic scalar windows, the advice's config keys, the
health.json record and `genlab health`, and short real runs (healthy ones stay silent, broken presets are
diagnosed)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math

import pytest
import torch
from runs_util import RING_GAN, SHAPES_VAE, run_cli, short, tensorboard
from stopper import interrupt_at

from genlab.health.advice import advice
from genlab.health.detectors import (
    DiscriminatorWins,
    ExplodingGradients,
    LossDivergence,
    ModeCollapse,
    NonFinite,
    PosteriorCollapse,
    Sustained,
    VanishingGradients,
    Window,
    fmt,
)
from genlab.health.diversity import diversity_ratio, feature_space, mean_pairwise_distance
from genlab.health.record import Verdict, format_health, health_record, read_health, write_health
from genlab.models.gan import GANConfig
from genlab.models.optim import OptimizerConfig
from genlab.models.vae import VAEConfig
from genlab.run.callbacks.health import HealthConfig, plain_signals
from genlab.utils.errors import ConfigError, GenlabError


def feed(detector, series, every: int = 50):
    """Observe ``series`` (a list of signal dicts) at steps every, 2*every, ...; (steps it fired at, last scalars)."""
    fired, scalars = [], {}
    for i, signals in enumerate(series, start=1):
        scalars, finding = detector.observe(i * every, signals)
        if finding is not None:
            fired.append((i * every, finding))
    return fired, scalars


# ---- building blocks ---------------------------------------------------------------------------------
def test_window_keeps_the_latest_steps_only():
    w = Window(100)
    for step in range(10, 210, 10):
        w.add(step, float(step))
    assert [s for s, _ in w.points] == list(range(110, 210, 10))
    assert w.median() == 155.0
    assert math.isnan(Window(5).median())


def test_sustained_counts_steps_without_a_break():
    held = Sustained()
    assert [
        held.update(s, h) for s, h in [(0, True), (50, True), (100, False), (150, True), (300, True)]
    ] == [
        0,
        50,
        0,
        0,
        150,
    ]


def test_fmt_reads_like_a_person_writes():
    assert (
        fmt(0.987) == "0.987"
        and fmt(1e-4) == "1e-04"
        and fmt(123456.0) == "1.2e+05"
        and fmt(math.nan) == "nan"
    )


# ---- GAN detectors -----------------------------------------------------------------------------------
def gan_step(acc: float, g: float = 1.0, d: float = 1.0, loss_d: float = 1.3, loss_g: float = 0.8):
    return {
        "d_acc_real": acc,
        "d_acc_fake": acc,
        "grad_norm_g": g,
        "grad_norm_d": d,
        "loss_d": loss_d,
        "loss_g": loss_g,
    }


def test_d_wins_fires_once_a_full_window_shows_a_perfect_and_confident_d():
    detector = DiscriminatorWins(window=500, accuracy=0.95, loss_d=0.05)
    # a healthy DCGAN: D is right on almost every sample but far from certain (loss_d 0.2)
    healthy = [gan_step(0.99, loss_d=0.2)] * 10
    winning = [gan_step(1.0, g=60.0, loss_d=1e-4, loss_g=12.0)] * 20
    fired, scalars = feed(detector, healthy + winning)
    # the window (500 steps) must be mostly winning: its medians cross at the 6th winning point
    assert fired and fired[0][0] == 50 * 16
    assert "D accuracy 1 and D loss 1e-04 over 500 steps, G grad norm 60" in fired[0][1]
    assert scalars["d_accuracy"] == 1.0


def test_d_wins_ignores_a_confident_start_and_single_blips():
    early = DiscriminatorWins(window=500, accuracy=0.95, loss_d=0.05)
    series = [gan_step(1.0, loss_d=1e-3)] * 5 + [
        gan_step(0.9, loss_d=0.3)
    ] * 30  # D wins the first 250 steps only
    assert feed(early, series)[0] == []
    blips = DiscriminatorWins(window=500, accuracy=0.95, loss_d=0.05)
    series = ([gan_step(1.0, loss_d=1e-4)] * 8 + [gan_step(0.6, loss_d=2.0)]) * 4  # a blip does not reset it
    assert feed(blips, series)[0]


def test_healthy_dcgan_numbers_do_not_look_like_d_wins():
    """quickstart (healthy, measured): D accuracy ~1 but loss_d median ~0.2 -> silent."""
    detector = DiscriminatorWins(window=500, accuracy=0.95, loss_d=0.05)
    series = [gan_step(1.0, loss_d=ld) for ld in (0.2, 0.01, 0.33, 0.6, 0.12, 0.25) * 10]
    assert feed(detector, series)[0] == []


def test_d_wins_is_silent_without_accuracy_signals():
    detector = DiscriminatorWins(window=50, accuracy=0.5, loss_d=1.0)
    assert feed(detector, [{"grad_norm_g": 1.0, "loss_d": 0.0}] * 10) == ([], {})


def test_loss_divergence_fires_when_d_loss_runs_away_not_on_one_spike():
    calm = [gan_step(0.7, loss_d=1.0 + 0.3 * (i % 3)) for i in range(20)]
    spike = calm + [gan_step(0.7, loss_d=500.0)] + calm
    assert feed(LossDivergence(limit=100), spike)[0] == []
    running = calm + [gan_step(0.7, loss_d=-20.0 * i) for i in range(20)]  # an unbounded critic
    fired, scalars = feed(LossDivergence(limit=100), running)
    assert fired and fired[0][0] == 50 * (20 + 9) and "|loss_d| median 120" in fired[0][1]
    assert scalars["loss_d_level"] > 100


def test_exploding_gradients_fires_when_the_norm_stays_out_of_its_usual_range():
    detector = ExplodingGradients(window=500, spike=20)
    usual = [gan_step(0.7, g=1.0 + 0.1 * (i % 2), d=2.0) for i in range(20)]
    exploded = [gan_step(0.7, g=80.0 * (i + 1), d=2.0) for i in range(7)]
    fired, scalars = feed(detector, usual + exploded)
    # the latest-5 median passes 20x at the 3rd exploded value, and stays there for 5 logged steps
    assert fired and fired[0][0] == 50 * 27
    assert "G grad norm 560 at step 1350" in fired[0][1] and "for 5 logged steps" in fired[0][1]
    assert "D grad" not in fired[0][1]
    assert scalars["grad_spike_g"] > 20 and scalars["grad_spike_d"] == pytest.approx(1.0)


def test_exploding_gradients_ignores_single_spikes_noise_and_a_falling_start():
    detector = ExplodingGradients(window=500, spike=20)
    series = [gan_step(0.7, g=g) for g in (100.0, 30.0, 5.0, 2.0)]  # large at first, then settling
    series += [gan_step(0.7, g=1.0 + (i % 3)) for i in range(30)]
    series += [gan_step(0.7, g=1e4)] + [gan_step(0.7, g=1.5)] * 10  # one odd batch
    assert feed(detector, series)[0] == []


def test_exploding_gradients_ignores_a_saturated_d_coming_back_briefly():
    """health_d_wins (measured): D's gradient norm sat at ~1e-3, jumped ~30x its usual for 3 logged steps."""
    detector = ExplodingGradients(window=500, spike=20)
    series = [gan_step(1.0, d=0.01)] * 6 + [gan_step(1.0, d=1e-3)] * 20
    series += [gan_step(1.0, d=v) for v in (0.2, 0.3, 0.4, 0.5, 0.3, 0.02, 0.01)] + [
        gan_step(1.0, d=1e-3)
    ] * 5
    assert feed(detector, series)[0] == []


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_exploding_gradients_fires_on_an_overflowed_norm_at_once(value):
    fired, _ = feed(ExplodingGradients(window=500, spike=20), [{"grad_norm": value}])
    assert fired and f"grad norm {value} at step 50" in fired[0][1]


def test_mode_collapse_on_a_diversity_drop_or_few_covered_modes():
    detector = ModeCollapse(diversity=0.2, drop=0.5, modes_fraction=0.5, min_on_modes=0.3)
    assert detector.observe(500, {"diversity": 0.9})[1] is None
    scalars, finding = detector.observe(1000, {"diversity": 0.05})
    assert "sample diversity 0.05 of the data's, down from 0.9" in finding and scalars["diversity"] == 0.05
    detector = ModeCollapse(diversity=0.2, drop=0.5, modes_fraction=0.5, min_on_modes=0.3)
    spread = {"diversity": 0.9, "modes_covered": 8.0, "num_modes": 8.0, "hq_fraction": 0.6}
    assert detector.observe(500, spread)[1] is None
    hopping = {"diversity": 0.5, "modes_covered": 2.0, "num_modes": 8.0, "hq_fraction": 0.8}
    scalars, finding = detector.observe(1000, hopping)
    assert "2/8 modes covered by the 80% on-mode samples, down from 8" in finding
    assert scalars["modes_covered_fraction"] == 0.25
    # samples off every mode: not judged on modes
    assert detector.observe(1500, {**hopping, "hq_fraction": 0.05})[1] is None


def test_a_generator_that_has_not_spread_out_yet_is_not_collapsed():
    detector = ModeCollapse(diversity=0.2, drop=0.5, modes_fraction=0.5, min_on_modes=0.3)
    rounds = [(100, 0.08), (200, 0.12), (300, 0.5)]
    assert [detector.observe(s, {"diversity": d})[1] for s, d in rounds] == [None] * 3
    # grid_best at step 500 (measured): the EMA generator's blob sits on the grid's centre mode
    grid = ModeCollapse(diversity=0.2, drop=0.5, modes_fraction=0.5, min_on_modes=0.3)
    start = {"diversity": 0.0087, "modes_covered": 1.0, "num_modes": 25.0, "hq_fraction": 0.98}
    assert grid.observe(500, start)[1] is None


def test_nonfinite_names_the_values():
    scalars, finding = NonFinite().observe(
        120, {"loss_d": math.nan, "loss_g": 1.0, "kl_per_dim": [0.1, math.inf]}
    )
    assert scalars == {"nonfinite": 1.0}
    assert finding == "non-finite values (kl_per_dim 1/2 non-finite, loss_d=nan at step 120)"
    assert NonFinite().observe(120, {"loss": 1.0}) == ({"nonfinite": 0.0}, None)


# ---- VAE detectors -----------------------------------------------------------------------------------
def vae_step(kl_dims, recon: float, units: float | None = None, grad: float = 10.0):
    signals = {"kl_per_dim": list(kl_dims), "recon": recon, "grad_norm": grad}
    signals["active_units"] = float(sum(k > 0.01 for k in kl_dims)) if units is None else units
    return signals


def test_posterior_collapse_needs_dead_latents_and_a_reconstruction_plateau():
    dead = [1e-4] * 16
    learning = [vae_step(dead, recon=200.0 - 2 * i) for i in range(40)]  # still improving: not (yet) collapse
    assert (
        feed(PosteriorCollapse(window=500, kl_active=0.01, active_fraction=0.1, plateau=0.02), learning)[0]
        == []
    )
    plateau = [vae_step(dead, recon=200.0 + (i % 2)) for i in range(60)]
    fired, scalars = feed(
        PosteriorCollapse(window=500, kl_active=0.01, active_fraction=0.1, plateau=0.02), plateau
    )
    assert fired and "0/16 latent dims active" in fired[0][1]
    assert scalars["kl_active_dims"] == 0 and abs(scalars["recon_change"]) < 0.02


def test_posterior_collapse_silent_while_latents_are_used():
    used = [vae_step([0.5] * 8 + [1e-4] * 8, recon=100.0) for _ in range(80)]
    fired, scalars = feed(
        PosteriorCollapse(window=500, kl_active=0.01, active_fraction=0.1, plateau=0.02), used
    )
    assert fired == [] and scalars["kl_active_dims"] == 8


def test_vanishing_gradients_after_a_sustained_fall_from_the_peak():
    detector = VanishingGradients(window=500, drop=1e-3)
    series = [{"grad_norm": 10.0}] * 20 + [{"grad_norm": 1e-5}] * 30
    fired, scalars = feed(detector, series)
    assert fired and "vanishing gradients" in fired[0][1] and scalars["grad_decay"] < 1e-3
    assert (
        feed(VanishingGradients(window=500, drop=1e-3), [{"grad_norm": 10.0 / (i + 1)} for i in range(50)])[0]
        == []
    )


# ---- diversity ---------------------------------------------------------------------------------------
def test_diversity_ratio_separates_collapsed_from_diverse_samples():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 2, generator=g)
    spread = mean_pairwise_distance(feature_space(real))
    assert diversity_ratio(torch.randn(500, 2, generator=g), spread) == pytest.approx(1.0, abs=0.1)
    assert diversity_ratio(0.01 * torch.randn(500, 2, generator=g), spread) < 0.05
    images = torch.rand(16, 1, 32, 32, generator=g)
    assert feature_space(images).shape == (16, 64)
    assert diversity_ratio(images[:1].repeat(16, 1, 1, 1), 1.0) == 0.0


def test_plain_signals_converts_tensors_and_keeps_vectors():
    out = plain_signals({"a": torch.tensor(1.5), "v": torch.tensor([1.0, 2.0]), "beta": 0.5})
    assert out == {"a": 1.5, "v": [1.0, 2.0], "beta": 0.5}


# ---- config, advice, record ----------------------------------------------------------------------------
def test_health_config_rejects_out_of_range_thresholds():
    HealthConfig()
    with pytest.raises(ConfigError, match="callbacks.health.d_wins_accuracy=1.5"):
        HealthConfig(d_wins_accuracy=1.5)
    with pytest.raises(ConfigError, match="callbacks.health.window"):
        HealthConfig(window=0)


def test_each_family_gets_its_detectors():
    names = lambda family: [d.name for d in HealthConfig().detectors(family)]  # noqa: E731
    assert names("gan") == ["d_wins", "loss_divergence", "mode_collapse", "exploding_gradients", "nonfinite"]
    assert names("vae") == ["posterior_collapse", "exploding_gradients", "vanishing_gradients", "nonfinite"]
    assert names("classifier") == ["nonfinite"]


def keys_named(text: str) -> list[str]:
    return [word.split("=")[0] for word in text.replace(",", " ").split() if "=" in word]


@pytest.mark.parametrize(
    "family,config,detectors",
    [
        (
            "gan",
            GANConfig(),
            ["d_wins", "loss_divergence", "mode_collapse", "exploding_gradients", "nonfinite"],
        ),
        (
            "gan",
            GANConfig(loss="wgan", lr_d=1e-3, lr_g=1e-4, r1_gamma=1, diffaugment="color"),
            ["d_wins", "mode_collapse", "exploding_gradients"],
        ),
        (
            "vae",
            VAEConfig(beta=20),
            ["posterior_collapse", "exploding_gradients", "vanishing_gradients", "nonfinite"],
        ),
        ("vae", VAEConfig(likelihood="gaussian", binarize=False, gaussian_std=1e-3), ["exploding_gradients"]),
    ],
)
def test_advice_names_only_real_config_keys(family, config, detectors):
    allowed = {f"model.{f.name}" for f in dataclasses.fields(config)} | {
        f"optimizer.{f.name}" for f in dataclasses.fields(OptimizerConfig)
    }
    for detector in detectors:
        text = advice(detector, family, config, OptimizerConfig())
        assert text.startswith("try ") and keys_named(text), text
        assert set(keys_named(text)) <= allowed, text


def test_advice_carries_this_runs_values():
    text = advice("d_wins", "gan", GANConfig(lr_d=2e-3, lr_g=2e-5), OptimizerConfig())
    assert "model.r1_gamma=1" in text and "model.lr_d=2e-05 (now 2e-03)" in text
    text = advice("mode_collapse", "gan", GANConfig(lr_g=2e-3, lr_d=1e-4), OptimizerConfig())
    assert "model.lr_g=1e-04 (now 2e-03)" in text
    assert "model.beta=1 (now 50)" in advice(
        "posterior_collapse", "vae", VAEConfig(beta=50), OptimizerConfig()
    )


def test_health_json_round_trip_and_format(tmp_path):
    fired = Verdict("d_wins")
    assert fired.record(1200, "discriminator wins (...): try model.r1_gamma=1") is True
    assert fired.record(3400, "again") is False
    record = health_record("gan", [fired, Verdict("nonfinite")])
    write_health(tmp_path, record)
    back = read_health(tmp_path)
    assert back == json.loads((tmp_path / "health.json").read_text())
    assert back["healthy"] is False and back["version"] == 1 and back["family"] == "gan"
    assert back["detectors"][0] == {
        "name": "d_wins",
        "fired": True,
        "first_step": 1200,
        "last_step": 3400,
        "message": "discriminator wins (...): try model.r1_gamma=1",
    }
    assert back["detectors"][1] == {
        "name": "nonfinite",
        "fired": False,
        "first_step": None,
        "last_step": None,
        "message": None,
    }
    lines = format_health(back)
    assert lines[0] == "gan run: UNHEALTHY" and "FIRED  d_wins" in lines[1] and "steps 1200-3400" in lines[1]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "content", ["{", "[]", '{"version": 1, "detectors": [1]}', '{"version": 9, "detectors": []}']
)
def test_read_health_refuses_a_damaged_record_in_one_line(tmp_path, content):
    (tmp_path / "health.json").write_text(content)
    with pytest.raises(GenlabError, match="health.json"):
        read_health(tmp_path)


def test_health_warning_goes_through_the_genlab_logger_once(caplog):
    from genlab.run.callbacks.health import HealthMonitor

    class FakeTrainer:
        global_step = 0
        is_global_zero = True
        loggers: list = []

    monitor = HealthMonitor(HealthConfig(window=100))
    monitor.detectors = HealthConfig(window=100).detectors("gan")
    monitor.verdicts = {d.name: Verdict(d.name) for d in monitor.detectors}
    trainer = FakeTrainer()
    with caplog.at_level(logging.WARNING, logger="genlab"):
        for step in range(50, 1000, 50):
            trainer.global_step = step
            monitor.observe(trainer, "step", gan_step(0.99, loss_d=1e-3))
    warnings = [r.getMessage() for r in caplog.records if r.name == "genlab"]
    assert len(warnings) == 1 and warnings[0].startswith("health: discriminator wins (D accuracy 0.99")
    assert "try model.r1_gamma=1" not in warnings[0]  # no model config here: the finding alone
    assert monitor.verdicts["d_wins"].first_step == 150 and monitor.verdicts["d_wins"].last_step == 950


def test_verdicts_survive_a_resume_through_the_callback_state():
    from genlab.run.callbacks.health import HealthMonitor

    class FakeModule:
        family, config, optim_config = "gan", GANConfig(), OptimizerConfig()

    before = HealthMonitor(HealthConfig())
    before.setup(None, FakeModule(), "fit")
    before.verdicts["d_wins"].record(1200, "discriminator wins")
    state = before.state_dict()
    assert json.loads(json.dumps(state)) == state  # plain data: checkpoints load with weights_only=True
    for order in ("setup first", "state first"):  # Lightning calls setup, then restores callback state
        after = HealthMonitor(HealthConfig())
        if order == "setup first":
            after.setup(None, FakeModule(), "fit")
        after.load_state_dict(state)
        if order == "state first":
            after.setup(None, FakeModule(), "fit")
        assert after.verdicts["d_wins"].fired and after.verdicts["d_wins"].first_step == 1200, order
        assert not after.verdicts["nonfinite"].fired


# ---- real runs through the CLI ----------------------------------------------------------------------------
FAST = ["threads=1", "trainer.accelerator=cpu"]


def train_run(capsys, run_dir, *overrides) -> tuple[int, str, dict | None]:
    """``genlab train`` in-process: (exit code, stderr, health.json or None)."""
    code, _, err = run_cli(capsys, "train", f"hydra.run.dir={run_dir}", *FAST, *overrides)
    path = run_dir / "health.json"
    return code, err, json.loads(path.read_text()) if path.is_file() else None


def fired(record: dict) -> dict[str, int]:
    """detector name -> first step, for the detectors that fired."""
    return {d["name"]: d["first_step"] for d in record["detectors"] if d["fired"]}


def health_lines(run_dir) -> list[str]:
    log = run_dir / "train.log"
    return [line for line in log.read_text().splitlines() if "health: " in line] if log.is_file() else []


def test_a_short_gan_run_logs_health_scalars_and_ends_with_a_clean_record(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, record = train_run(capsys, run_dir, *RING_GAN, *short(40, 20))
    assert code == 0 and record is not None
    assert record["family"] == "gan" and record["healthy"] is True and fired(record) == {}
    assert [d["name"] for d in record["detectors"]] == [d.name for d in HealthConfig().detectors("gan")]
    tags = tensorboard(run_dir).Tags()["scalars"]
    for tag in ("health/d_accuracy", "health/loss_d_level", "health/nonfinite", "health/diversity"):
        assert tag in tags, tags
    assert "health/modes_covered_fraction" in tags  # the ring knows its modes
    assert health_lines(run_dir) == []
    code, out, err = run_cli(capsys, "health", str(run_dir))
    assert code == 0 and err == ""
    assert f"{run_dir}: gan run: healthy" in out and "ok     d_wins" in out


def test_a_vae_run_logs_its_kl_signals_and_the_monitor_can_be_switched_off(tmp_path, capsys):
    code, _, record = train_run(capsys, tmp_path / "on", *SHAPES_VAE, *short(8, 4))
    assert code == 0 and record["family"] == "vae" and record["healthy"] is True
    tags = tensorboard(tmp_path / "on").Tags()["scalars"]
    assert {"health/kl_active_dims", "health/active_units", "train/grad_norm"} <= set(tags)
    code, _, record = train_run(
        capsys, tmp_path / "off", *SHAPES_VAE, *short(8, 4), "callbacks.health.enabled=false"
    )
    assert code == 0 and record is None
    assert not [t for t in tensorboard(tmp_path / "off").Tags()["scalars"] if t.startswith("health/")]


def test_a_diverged_run_records_its_verdict_and_keeps_the_guards_behaviour(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, err, record = train_run(
        capsys, run_dir, *SHAPES_VAE, *short(20, 10), "optimizer=sgd", "optimizer.lr=1e6"
    )
    assert code == 1 and err.startswith("genlab train: error: ") and err.count("\n") == 1
    assert "training stopped" in err and "Traceback" not in err
    assert json.loads((run_dir / "status.json").read_text())["status"] == "diverged"
    assert record["healthy"] is False and "nonfinite" in fired(record)
    verdict = next(d for d in record["detectors"] if d["name"] == "nonfinite")
    assert "non-finite values" in verdict["message"] and "optimizer.lr" in verdict["message"]


def test_an_interrupted_run_still_writes_health_json(tmp_path, capsys, monkeypatch):
    interrupt_at(monkeypatch, 6)
    code, _, record = train_run(capsys, tmp_path / "run", *RING_GAN, *short(40, 20))
    assert code == 143 and record is not None and record["healthy"] is True


@pytest.mark.parametrize("args", [["/nonexistent/run"], ["--bogus"]])
def test_genlab_health_refuses_bad_input_in_one_line(capsys, args):
    code, out, err = run_cli(capsys, "health", *args)
    assert code == 2 and out == "" and err.startswith("genlab health: error: ") and err.count("\n") == 1


def test_the_vae_exploding_preset_is_diagnosed(tmp_path, capsys, real_data_dir):
    run_dir = tmp_path / "run"
    code, err, record = train_run(
        capsys, run_dir, "experiment=health_vae_exploding", f"paths.data_dir={real_data_dir}"
    )
    assert code == 1 and "training stopped" in err  # the divergence guard still stops it
    assert set(fired(record)) == {"exploding_gradients", "nonfinite"}
    assert fired(record)["exploding_gradients"] <= 50
    lines = health_lines(run_dir)
    assert len(lines) == 2 and any("exploding gradients (grad norm nan" in line for line in lines)
    assert any("model.grad_clip=100" in line for line in lines)


# ---- the battery: broken presets are diagnosed, healthy presets stay silent (minutes each: slow) -------------
SHORT_WINDOW = "callbacks.health.window=300"  # both sides run shortened, with the same (stricter) window


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset,overrides,expected",
    [
        ("health_d_wins", [SHORT_WINDOW, "trainer.max_steps=450"], "d_wins"),
        ("health_gan_exploding", ["trainer.max_steps=500"], "loss_divergence"),
        ("health_mode_collapse", ["trainer.max_steps=1500"], "mode_collapse"),
        (
            "health_vae_collapse",
            [SHORT_WINDOW, "trainer.max_steps=1200", "trainer.val_check_interval=600"],
            "posterior_collapse",
        ),
    ],
)
def test_a_broken_preset_is_diagnosed(tmp_path, capsys, real_data_dir, preset, overrides, expected):
    run_dir = tmp_path / "run"
    code, _, record = train_run(
        capsys, run_dir, f"experiment={preset}", f"paths.data_dir={real_data_dir}", *overrides
    )
    assert code == 0 and record["healthy"] is False
    first = min(fired(record), key=fired(record).get)
    assert first == expected, record
    lines = health_lines(run_dir)
    assert len(lines) == len(fired(record))  # one line per fired detector, never repeated
    for verdict in record["detectors"]:
        if verdict["fired"]:
            assert any(line.endswith(f"health: {verdict['message']}") for line in lines), (verdict, lines)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=quickstart", SHORT_WINDOW, "trainer.max_steps=600"],
        ["experiment=ring_best", SHORT_WINDOW, "trainer.max_steps=2000", "trainer.val_check_interval=500"],
        ["experiment=grid_best", SHORT_WINDOW, "trainer.max_steps=2000", "trainer.val_check_interval=500"],
        # the standard prior: the posterior-collapse detector reads its per-dim KL (the VampPrior has none)
        [
            "experiment=mnist_vae",
            "model.prior=standard",
            SHORT_WINDOW,
            "trainer.max_steps=1500",
            "trainer.val_check_interval=500",
        ],
        # the default MNIST GAN (DCGAN, batch 128): the first part of its first epoch
        [
            "dataset=mnist",
            "trainer.max_steps=60",
            "trainer.val_check_interval=30",
            "trainer.log_every_n_steps=5",
        ],
    ],
    ids=["quickstart", "ring_best", "grid_best", "mnist_vae", "mnist_gan"],
)
def test_a_healthy_preset_raises_no_alarm(tmp_path, capsys, real_data_dir, overrides):
    run_dir = tmp_path / "run"
    code, _, record = train_run(capsys, run_dir, f"paths.data_dir={real_data_dir}", *overrides)
    assert code == 0 and fired(record) == {} and record["healthy"] is True
    assert health_lines(run_dir) == []
