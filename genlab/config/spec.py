"""What a model needs to know about its data, known from config alone (before any file is read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DataSpec:
    """Shape and value range of the samples a datamodule emits.

    ``shape`` is ``(C, H, W)`` for images or ``(D,)`` for vectors (the 2D toy datasets).
    ``value_range`` is ``(lo, hi)`` for bounded data (e.g. ``(-1, 1)`` for tanh generators,
    ``(0, 1)`` for Bernoulli VAEs) or ``None`` for unbounded real-valued data.
    """

    shape: tuple[int, ...]
    value_range: tuple[float, float] | None
    num_classes: int | None = None
    name: str = ""

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def channels(self) -> int:
        return self.shape[0] if self.is_image else 1

    @property
    def image_size(self) -> int | None:
        return self.shape[-1] if self.is_image else None

    @property
    def dim(self) -> int:
        out = 1
        for s in self.shape:
            out *= s
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["value_range"] = None if self.value_range is None else [float(v) for v in self.value_range]
        return d

    @classmethod
    def from_dict(cls, obj: dict) -> DataSpec:
        """The inverse of :meth:`to_dict` (a stored run record); TypeError/ValueError/KeyError for bad data."""
        vr = obj["value_range"]
        classes = obj.get("num_classes")
        return cls(
            shape=tuple(int(s) for s in obj["shape"]),
            value_range=None if vr is None else (float(vr[0]), float(vr[1])),
            num_classes=None if classes is None else int(classes),
            name=str(obj.get("name", "")),
        )
