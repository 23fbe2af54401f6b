"""Evaluation metrics of generated samples; each module is one family of metrics.

``fid`` (FID/KID/IS via torchmetrics), ``prdc`` (precision/recall/density/coverage), ``classifier_stats``
(class histograms, stacked-MNIST modes), ``modes`` (2D mixtures), ``features`` (Inception or a built genlab
classifier), ``catalogue`` (every metric: its keys, direction, default samples and needs), ``request`` (what
`genlab eval` and the training callback ask for), ``suite`` (one evaluation pass over a model, shared by both).
"""

from genlab.metrics.classifier_stats import (
    class_histogram,
    class_kl,
    conditional_accuracy,
    kl_divergence,
    stacked_modes,
)
from genlab.metrics.fid import frechet_distance, inception_score, intra_fid, kernel_distance
from genlab.metrics.prdc import prdc

__all__ = [
    "class_histogram",
    "class_kl",
    "conditional_accuracy",
    "frechet_distance",
    "inception_score",
    "intra_fid",
    "kernel_distance",
    "kl_divergence",
    "prdc",
    "stacked_modes",
]
