"""Importers: other libraries' ResNetV2 checkpoints into resnetv2's format.

- :func:`convert_timm_state_dict` — timm ``resnetv2_18/34/50/101/152/200`` (same key names);
- :func:`convert_pytorchcv_state_dict` — pytorchcv ``preresnet*_cifar10/_cifar100``;
- :func:`import_checkpoint` — a checkpoint file, library detected from its keys;
- :func:`weights_from_source` — any of these, or a resnetv2 file, as a
  :class:`~resnetv2.loading.Weights`;
- :func:`load_init_weights` — ``--init-weights FILE|RUN|timm:NAME|pytorchcv:NAME``.

Every importer is verified by an output-parity test against the original library.
"""

from resnetv2.convert.common import ConversionError, ImportedWeights
from resnetv2.convert.pytorchcv import convert_pytorchcv_state_dict, fetch_pytorchcv
from resnetv2.convert.sources import (
    backbone_differences,
    import_checkpoint,
    load_init_weights,
    load_weights_source,
    weights_from_source,
)
from resnetv2.convert.timm import convert_timm_state_dict, fetch_timm

__all__ = [
    "ConversionError",
    "ImportedWeights",
    "backbone_differences",
    "convert_pytorchcv_state_dict",
    "convert_timm_state_dict",
    "fetch_pytorchcv",
    "fetch_timm",
    "import_checkpoint",
    "load_init_weights",
    "load_weights_source",
    "weights_from_source",
]
