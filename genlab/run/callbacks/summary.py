"""The model summary at the start of a run, as plain text in the log, without Lightning's empty FLOPs column.

Lightning 2.6 adds a FLOPs column to its summary; it is only measured when the module sets
``example_input_array`` (genlab's modules do not), so it shows 0 for every layer. This summary drops the
column (and the "Total FLOPs" line) when nothing was measured, and writes through ``logging`` so the table
also lands in ``train.log`` (Lightning's rich variant prints box-drawing characters to the console only).
Passing it as a callback is Lightning's documented way to configure the summary; Lightning then adds no
default one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pytorch_lightning.callbacks import ModelSummary as LightningModelSummary
from pytorch_lightning.utilities.model_summary.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)

from genlab.config.schema import check_at_least

log = logging.getLogger("genlab")


@dataclass(frozen=True)
class ModelSummaryConfig:
    """``callbacks.model_summary``."""

    # depth of nested modules listed (0: no summary; trainer.enable_model_summary=false also turns it off)
    max_depth: int = 1

    def __post_init__(self) -> None:
        check_at_least("callbacks.model_summary.max_depth", self.max_depth, -1, 1)


class ModelSummary(LightningModelSummary):
    config_class = ModelSummaryConfig

    def __init__(self, config: ModelSummaryConfig | None = None) -> None:
        super().__init__(max_depth=(config or ModelSummaryConfig()).max_depth)

    @staticmethod
    def summarize(*columns: Any, total_flops: int = 0, **summarize_kwargs: Any) -> None:
        """Lightning's hook with its summary columns (data, parameter counts, size, training modes)."""
        log.info("model summary\n%s", format_summary(*columns, total_flops=total_flops))


def format_summary(
    summary_data: list[tuple[str, list[str]]],
    total_parameters: int,
    trainable_parameters: int,
    model_size: float,
    total_training_modes: dict[str, int],
    total_flops: int = 0,
) -> str:
    """Lightning's summary columns as an aligned text table; the FLOPs column only when FLOPs were measured."""
    columns = [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]
    widths = [max([len(name), *(len(str(v)) for v in values)]) for name, values in columns]
    rows = list(zip(*(values for _, values in columns), strict=True))
    lines = ["  ".join(f"{name:<{w}}" for (name, _), w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(f"{str(v):<{w}}" for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    totals = [
        (get_human_readable_count(trainable_parameters), "trainable params"),
        (get_human_readable_count(total_parameters - trainable_parameters), "non-trainable params"),
        (get_formatted_model_size(model_size), "estimated params size (MB)"),
        (str(total_training_modes.get("train", 0)), "modules in train mode"),
        (str(total_training_modes.get("eval", 0)), "modules in eval mode"),
    ]
    if total_flops:
        totals.append((get_human_readable_count(total_flops), "total FLOPs"))
    lines += [f"{value:<10} {text}" for value, text in totals]
    return "\n".join(lines)
