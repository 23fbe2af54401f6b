"""Failure detectors: each watches a few scalars over a window of training steps and says when its failure shows.

A detector is fed one dict of plain floats per observation (a logging step, or a validation round for
:class:`ModeCollapse`) and answers with the ``health/<signal>`` scalars to log and, while its condition holds,
what it saw (with the numbers). It knows nothing of Lightning, configs or advice: the monitor
(:mod:`genlab.run.callbacks.health`) feeds it, adds the config keys that help, and warns once.
Signals a detector needs but does not get (e.g. D accuracy under ``loss=wgan``) leave it silent.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping
from typing import ClassVar

MIN_POINTS = 5  # a median of fewer logging steps is no reference


class Window:
    """The ``(step, value)`` points of the latest ``steps`` training steps: ``(last - steps, last]``."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.points: deque[tuple[int, float]] = deque()

    def add(self, step: int, value: float) -> None:
        self.points.append((step, value))
        while self.points[0][0] <= step - self.steps:
            self.points.popleft()

    def __len__(self) -> int:
        return len(self.points)

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]

    def median(self) -> float:
        return statistics.median(self.values) if self.points else math.nan


class Sustained:
    """How long a condition has held without a break, in steps (0 while it does not hold)."""

    def __init__(self) -> None:
        self.since: int | None = None

    def update(self, step: int, holds: bool) -> int:
        if not holds:
            self.since = None
            return 0
        if self.since is None:
            self.since = step
        return step - self.since


def fmt(x: float) -> str:
    """A number as people read it in a one-line message: 0.99, 12.3, 1e-04, 3.2e+05."""
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e4):
        return f"{x:.0e}" if abs(x) < 1e-2 else f"{x:.1e}"
    return f"{x:.3g}"


class Detector:
    """One failure. ``observe`` returns ``(scalars, finding)``: finding is None while the condition does not hold."""

    name: ClassVar[str]
    cadence: ClassVar[str] = "step"  # "step": every logging step; "validation": every validation round

    def observe(self, step: int, signals: Mapping[str, float]) -> tuple[dict[str, float], str | None]:
        raise NotImplementedError


class NonFinite(Detector):
    """A loss or gradient norm became NaN or infinite (training stops: the divergence guard)."""

    name = "nonfinite"

    def observe(self, step, signals):
        bad = []
        for key, value in sorted(signals.items()):
            if isinstance(value, list | tuple):
                n = sum(not math.isfinite(x) for x in value)
                if n:
                    bad.append(f"{key} {n}/{len(value)} non-finite")
            elif not math.isfinite(value):
                bad.append(f"{key}={value}")
        scalars = {"nonfinite": float(bool(bad))}
        if not bad:
            return scalars, None
        return scalars, f"non-finite values ({', '.join(bad)} at step {step})"


class DiscriminatorWins(Detector):
    """D tells real from generated almost perfectly and its loss sits near zero: over the latest ``window``
    steps the median of D's accuracy is at least ``accuracy`` and the median of ``loss_d`` at most ``loss_d``.

    (With the non-saturating and hinge losses G's gradient does not vanish when D wins; measured in a broken
    run it stayed at 50-100 while D's loss fell to 1e-5. The message reports it.)"""

    name = "d_wins"

    def __init__(self, window: int, accuracy: float, loss_d: float) -> None:
        self.window, self.accuracy, self.loss_d = window, accuracy, loss_d
        self.acc, self.losses = Window(window), Window(window)
        self.g_norms = Window(window)
        self.first_step: int | None = None

    def observe(self, step, signals):
        if "d_acc_real" not in signals or "d_acc_fake" not in signals or "loss_d" not in signals:
            return {}, None
        if self.first_step is None:
            self.first_step = step
        acc = (signals["d_acc_real"] + signals["d_acc_fake"]) / 2
        self.acc.add(step, acc)
        self.losses.add(step, signals["loss_d"])
        if "grad_norm_g" in signals:
            self.g_norms.add(step, signals["grad_norm_g"])
        scalars = {"d_accuracy": acc}
        acc_median, loss_median = self.acc.median(), self.losses.median()
        full = step - self.first_step >= self.window
        if not (full and acc_median >= self.accuracy and loss_median <= self.loss_d):
            return scalars, None
        return scalars, (
            f"discriminator wins (D accuracy {fmt(acc_median)} and D loss {fmt(loss_median)} over "
            f"{self.window} steps, G grad norm {fmt(self.g_norms.median())})"
        )


class LossDivergence(Detector):
    """D's loss runs away: the median of its latest 5 logged ``|loss_d|`` exceeds ``limit``. The
    non-saturating and hinge losses stay of order 1 (a D that wins outright goes to 0, not up) and a
    gradient-penalized critic's gap of order 1-10; hundreds mean the critic's values are unbounded (e.g.
    ``loss=wgan`` without ``gp_lambda``) or D is confidently wrong."""

    name = "loss_divergence"

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.recent: deque[float] = deque(maxlen=MIN_POINTS)

    def observe(self, step, signals):
        value = signals.get("loss_d", math.nan)
        if not math.isfinite(value):
            return {}, None
        self.recent.append(abs(value))
        level = statistics.median(self.recent)
        scalars = {"loss_d_level": level}
        if len(self.recent) < MIN_POINTS or level <= self.limit:
            return scalars, None
        return (
            scalars,
            f"losses diverge (|loss_d| median {fmt(level)} over the latest {len(self.recent)} logged steps)",
        )


class ExplodingGradients(Detector):
    """A gradient norm leaves its usual range: the median of its latest 5 logged values exceeds ``spike`` times
    the highest median it had over any earlier ``window`` steps, at 5 logged steps in a row. Medians and a
    run of them, not single values: one odd batch, or a saturated D's tiny gradient coming back to life for a
    moment, is not an explosion. A non-finite norm (an overflowed gradient) counts at once: explosions that take
    fewer steps than the logging interval are only ever seen that way. Each ``grad_norm*`` signal (G and D,
    or the VAE's one) is watched on its own."""

    name = "exploding_gradients"

    def __init__(self, window: int, spike: float) -> None:
        self.window, self.spike = window, spike
        self.recent: dict[str, deque[tuple[int, float]]] = {}
        self.history: dict[str, Window] = {}
        self.peak: dict[str, float] = {}
        self.above: dict[str, int] = {}  # consecutive logged steps above the limit

    def observe(self, step, signals):
        scalars, seen = {}, []
        for key in sorted(k for k in signals if k.startswith("grad_norm")):
            value = signals[key]
            net = key.removeprefix("grad_norm").lstrip("_")
            name = f"{net.upper()} " if net else ""
            if not math.isfinite(value):
                seen.append(f"{name}grad norm {value} at step {step}")
                continue
            recent = self.recent.setdefault(key, deque(maxlen=MIN_POINTS))
            history = self.history.setdefault(key, Window(self.window))
            if len(recent) == recent.maxlen:  # the oldest recent value becomes history
                history.add(*recent[0])
                if len(history) >= MIN_POINTS:
                    self.peak[key] = max(self.peak.get(key, 0.0), history.median())
            recent.append((step, value))
            level = statistics.median(v for _, v in recent)
            peak = self.peak.get(key, math.nan)
            ratio = level / peak if peak > 0 else math.nan
            if math.isfinite(ratio):
                scalars[f"grad_spike_{net}" if net else "grad_spike"] = ratio
            self.above[key] = self.above.get(key, 0) + 1 if ratio > self.spike else 0
            if self.above[key] >= MIN_POINTS:
                seen.append(
                    f"{name}grad norm {fmt(value)} at step {step}, the median of the latest {MIN_POINTS} "
                    f"{fmt(ratio)}x its usual {fmt(peak)} for {self.above[key]} logged steps"
                )
        return scalars, f"exploding gradients ({'; '.join(seen)})" if seen else None


class VanishingGradients(Detector):
    """The gradient norm's median over ``window`` steps stays below ``drop`` times its highest windowed median
    so far for another ``window`` steps: the network has stopped learning."""

    name = "vanishing_gradients"

    def __init__(self, window: int, drop: float) -> None:
        self.window, self.drop = window, drop
        self.norms = Window(window)
        self.peak = 0.0
        self.held = Sustained()

    def observe(self, step, signals):
        value = signals.get("grad_norm", math.nan)
        if not math.isfinite(value):
            return {}, None
        self.norms.add(step, value)
        median = self.norms.median()
        self.peak = max(self.peak, median)
        ratio = median / self.peak if self.peak > 0 else 1.0
        held = self.held.update(step, ratio < self.drop)
        scalars = {"grad_decay": ratio}
        if held < self.window:
            return scalars, None
        return scalars, (
            f"vanishing gradients (grad norm median {fmt(median)} for {held} steps, "
            f"{fmt(ratio)}x its peak {fmt(self.peak)})"
        )


class PosteriorCollapse(Detector):
    """Fewer than ``active_fraction`` of the latent dims carry information for ``window`` steps (batch-mean KL
    above ``kl_active`` nats, and posterior means that vary over the batch) while the reconstruction loss has
    stopped improving (its median changed by less than ``plateau``, relatively, over the window)."""

    name = "posterior_collapse"

    def __init__(self, window: int, kl_active: float, active_fraction: float, plateau: float) -> None:
        self.window, self.kl_active = window, kl_active
        self.active_fraction, self.plateau = active_fraction, plateau
        self.recon = Window(2 * window)
        self.held = Sustained()

    def observe(self, step, signals):
        kl_dims = signals.get("kl_per_dim")
        if not kl_dims or "recon" not in signals:
            return {}, None
        latent = len(kl_dims)
        by_kl = sum(v > self.kl_active for v in kl_dims)
        units = signals.get("active_units", by_kl)
        active = min(by_kl, units)
        self.recon.add(step, signals["recon"])
        change = self.recon_change(step)
        scalars = {"kl_active_dims": float(by_kl), "active_units": float(units), "recon_change": change}
        collapsed = active < max(1.0, self.active_fraction * latent)
        held = self.held.update(step, collapsed and math.isfinite(change) and abs(change) < self.plateau)
        if held < self.window:
            return scalars, None
        kl = sum(kl_dims)
        return scalars, (
            f"posterior collapse ({active}/{latent} latent dims active, KL {fmt(kl)} nats, for {held} steps; "
            f"reconstruction loss changed {fmt(100 * change)}% over {self.window} steps)"
        )

    def recon_change(self, step: int) -> float:
        """Relative change of the reconstruction loss's median, previous window -> latest window (nan until
        both hold a few points)."""
        old = [v for s, v in self.recon.points if s <= step - self.window]
        new = [v for s, v in self.recon.points if s > step - self.window]
        if len(old) < MIN_POINTS or len(new) < MIN_POINTS:
            return math.nan
        before = statistics.median(old)
        return (statistics.median(new) - before) / abs(before) if before else math.nan


class ModeCollapse(Detector):
    """At a validation round, the samples of a fixed noise batch have lost their diversity: their mean pairwise
    distance over real data's (data space for vectors, a fixed pooled-pixel space for images) is below
    ``diversity`` and below ``drop`` times its highest value in this run; or, on data with known modes, the
    samples on a mode (at least ``min_on_modes`` of them) cover fewer than ``modes_fraction`` of the modes and
    at most ``drop`` times the most modes covered earlier.

    Both conditions need a fall from an earlier round: a generator that has not spread out yet (early samples
    sit in a small blob, which on the grid is even on its centre mode) is not collapsed."""

    name = "mode_collapse"
    cadence = "validation"

    def __init__(self, diversity: float, drop: float, modes_fraction: float, min_on_modes: float) -> None:
        self.diversity, self.drop = diversity, drop
        self.modes_fraction, self.min_on_modes = modes_fraction, min_on_modes
        self.peak, self.peak_modes = 0.0, 0.0

    def observe(self, step, signals):
        scalars, seen = {}, []
        ratio = signals.get("diversity", math.nan)
        if math.isfinite(ratio):
            scalars["diversity"] = ratio
            if ratio < self.diversity and ratio < self.drop * self.peak:
                seen.append(f"sample diversity {fmt(ratio)} of the data's, down from {fmt(self.peak)}")
            self.peak = max(self.peak, ratio)
        if "num_modes" in signals:
            covered, total = signals["modes_covered"], signals["num_modes"]
            on_modes = signals["hq_fraction"]
            scalars["modes_covered_fraction"] = covered / total
            if (
                on_modes >= self.min_on_modes
                and covered < self.modes_fraction * total
                and covered <= self.drop * self.peak_modes
            ):
                seen.append(
                    f"{int(covered)}/{int(total)} modes covered by the {fmt(100 * on_modes)}% on-mode samples, "
                    f"down from {int(self.peak_modes)}"
                )
            self.peak_modes = max(self.peak_modes, covered)
        if not seen:
            return scalars, None
        return scalars, f"mode collapse ({', '.join(seen)} at step {step})"
