"""What genlab asks of Hydra's runtime (public ``HydraConfig`` API only)."""

from __future__ import annotations


def in_sweep() -> bool:
    """Whether this job runs inside ``-m`` (a sweeper decides what a failed job means)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def task_overrides() -> list[str]:
    """The command-line overrides of this job (what ``.hydra/overrides.yaml`` records), or [] outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def hydra_config_yaml() -> str | None:
    """Hydra's own config of this job as YAML (for ``.hydra/hydra.yaml``), or None outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    return OmegaConf.to_yaml({"hydra": HydraConfig.get()})
