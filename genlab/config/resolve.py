"""Fill the dataset keys left on auto (null) from what the chosen model needs."""

from __future__ import annotations

from omegaconf import DictConfig, open_dict

from genlab.errors import ConfigError


def resolve_data_config(cfg: DictConfig, dataset_cls: type, model_cls: type, typed: dict) -> None:
    """``dataset.image_size: null`` -> the native size if the network supports it, else the smallest supported
    size above it; ``dataset.value_range: null`` -> the range the model expects. Edits ``cfg`` in place."""
    ds, model_cfg = cfg.dataset, typed["model"]
    native = dataset_cls.native_image_size(typed["dataset"])
    with open_dict(ds):
        if native is not None and "image_size" in ds and ds.image_size is None:
            sizes = model_cls.supported_image_sizes(model_cfg)
            if sizes is None or native in sizes:
                ds.image_size = native
            else:
                above = [s for s in sorted(sizes) if s >= native]
                if not above:
                    raise ConfigError(
                        f"dataset {ds.get('name', '')} is {native}px but model.net={getattr(model_cfg, 'net', '?')} "
                        f"only produces {sorted(sizes)}; set dataset.image_size to one of them"
                    )
                ds.image_size = above[0]
        if "value_range" in ds and ds.value_range is None and native is not None:
            expected = model_cls.expected_value_range(model_cfg)
            ds.value_range = list(expected) if expected is not None else [0.0, 1.0]
