"""``create_model``: from a preset name, a depth or a spec to an ``nn.Module``, with
pretrained weights when asked (``resnetv2.create_model`` and ``resnetv2.nn.create_model``).

It sits above ``nn/`` and the weights layer because ``pretrained=`` reads weights files, run
folders and hub names into a :class:`~resnetv2.loading.Weights` through
:func:`resnetv2.convert.weights_from_source`; building a fresh model needs only
:class:`~resnetv2.nn.model.ResNetV2`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from torch import nn

from resnetv2.errors import SpecError
from resnetv2.nn.features import ResNetV2Features
from resnetv2.nn.model import ResNetV2
from resnetv2.options import make_spec, spec_options
from resnetv2.spec import ResNetV2Spec


def create_model(
    model: str | int | ResNetV2Spec | None = None,
    /,
    *,
    device: Any = None,
    pretrained: bool | str | os.PathLike[str] | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    global_pool: str | None = None,
    **options: Any,
) -> nn.Module:
    """Build a ResNetV2, the way ``timm.create_model`` builds one.

    ``model`` is a preset name (``list_presets()``), a depth, or a spec; ``options`` are
    :func:`resnetv2.make_spec` options (``num_classes=``, ``block=``, ``units=``,
    ``stride_at=``, ``width_multiplier=``, ``drop_path_rate=``, …). timm's arguments:

    - ``pretrained``: a weights file, a run folder, a :func:`~resnetv2.save_pretrained`
      folder, ``"timm:NAME"`` or ``"pytorchcv:NAME"`` (``True`` = ``"timm:<preset>"`` for the
      ``resnetv2_*`` presets). Without ``model`` the weights' own architecture is built; with
      it (or with options) the backbone must match and a head of another size starts fresh,
      as when fine-tuning. Hub names use the local cache and fail at once when offline.
    - ``features_only``/``out_indices``: return a :class:`~resnetv2.nn.features.ResNetV2Features`
      whose forward gives the feature maps at ``out_indices`` (0 = stem, i = stage i-1;
      default all), as timm's ``features_only`` models do.
    - ``global_pool``: ``avg`` (default), ``max``, ``avgmax``, ``catavgmax`` or ``""``.
    """
    if out_indices is not None and not features_only:
        raise SpecError("out_indices selects feature maps: pass features_only=True with it")
    source = _pretrained_source(pretrained, model)
    pool = "avg" if global_pool is None else global_pool
    if source is None:
        if isinstance(model, ResNetV2Spec):
            spec = model.replace(**options) if options else model
        else:
            spec = make_spec(model, **options)
        net = ResNetV2(spec, device=device, global_pool=pool)
    else:
        net = _load_pretrained(model, source, device, pool, options)
    if features_only:
        return ResNetV2Features(net, out_indices)
    return net


def _pretrained_source(pretrained: Any, model: Any) -> str | None:
    if pretrained is None or pretrained is False:
        return None
    if pretrained is True:
        if isinstance(model, str) and model.startswith("resnetv2_"):
            return f"timm:{model}"
        raise SpecError(
            f"pretrained=True needs a preset with published weights (resnetv2_18/34/50/101/"
            f"152/200, through timm), not {model!r}; pass pretrained='timm:NAME', "
            "'pytorchcv:NAME', a weights file or a folder"
        )
    if isinstance(pretrained, (str, os.PathLike)):
        return os.fspath(pretrained)
    raise SpecError(
        f"pretrained must be a path, 'timm:NAME', 'pytorchcv:NAME', True or None; got "
        f"{type(pretrained).__name__}"
    )


def _load_pretrained(
    model: Any, source: str, device: Any, pool: str, options: dict[str, Any]
) -> ResNetV2:
    """Weights from ``source`` in the architecture asked for (their own when none is)."""
    # Imported here, not at the top: building a fresh model (and `import resnetv2.nn`)
    # should not load the converters for timm, pytorchcv and Keras.
    from resnetv2.convert.sources import weights_from_source

    weights = weights_from_source(source)
    if model is None and not options and pool == "avg":
        return weights.build(device=device)
    if isinstance(model, ResNetV2Spec):
        spec = model.replace(**options) if options else model
    elif model is not None:
        spec = make_spec(model, **options)
    else:
        spec = make_spec(**{**spec_options(weights.spec), **options})
    return weights.load_into(ResNetV2(spec, device=device, global_pool=pool))
