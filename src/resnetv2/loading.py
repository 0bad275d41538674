"""Save a model with everything needed to use it, and rebuild it from the file alone.

A weights file is safetensors with a JSON metadata block (see :mod:`resnetv2.io.weights`):
``spec`` (the architecture, :meth:`ResNetV2Spec.to_dict`), ``class_names``, ``preprocessing``
(``input_size``, ``in_channels``, ``mean``, ``std``, ``interpolation``), ``num_params`` and
whatever ``extra`` the caller adds. :func:`load_model` needs nothing else: no code, no config,
no pickle.

:func:`save_pretrained` writes the folder layout hub users know — ``config.json`` (spec,
preprocessing, class names, timm's ``pretrained_cfg``) next to ``model.safetensors`` — and
:func:`load_model` reads such a folder, ``config.json`` taking precedence over the metadata
in the weights file (as on the Hugging Face hub, the config is what people edit).

Every load goes through one :class:`Weights` object — the spec, the state dict and the
:class:`~resnetv2.model_metadata.ModelMetadata` — which builds the model
(:meth:`Weights.build`) or loads itself into one built for another head
(:meth:`Weights.load_into`). :meth:`Weights.from_file` reads resnetv2 files and folders;
:func:`resnetv2.convert.weights_from_source` also reads other libraries' checkpoints and hub
names. ``load_model``, ``create_model(pretrained=)``, ``Predictor.from_weights``,
``--init-weights`` and ``resnetv2 convert``/``export`` all build from it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from resnetv2.errors import ResNetV2Error
from resnetv2.model_metadata import ModelMetadata, metadata_of
from resnetv2.preprocessing_spec import PreprocessingSpec, default_preprocessing
from resnetv2.spec import ResNetV2Spec

if TYPE_CHECKING:
    from resnetv2.nn.model import ResNetV2

#: File name of the weights inside a run folder (written by ``resnetv2 train``).
RUN_WEIGHTS = "model.safetensors"
#: The hub-style config next to the weights (written by :func:`save_pretrained`).
CONFIG_JSON = "config.json"
#: ``config.json`` keys that override the weights file's metadata when loading a folder.
_CONFIG_METADATA_KEYS = ("spec", "class_names", "preprocessing", "global_pool")

#: Spec fields a fine-tuning run may change without touching the pretrained backbone.
HEAD_AND_REGULARISATION_FIELDS = frozenset(
    {
        "num_classes",
        "head",
        "head_hidden",
        "head_dropout",
        "classifier",
        "dropout",
        "drop_path_rate",
        "stem_dropout",
        "zero_init_last",
        "name",
    }
)


class WeightsFileError(ResNetV2Error, ValueError):
    """A weights file or run folder that cannot be loaded as a resnetv2 model."""


def resolve_weights_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or ``path/model.safetensors`` when ``path`` is a run folder."""
    p = Path(path)
    if p.is_dir():
        candidate = p / RUN_WEIGHTS
        if not candidate.is_file():
            raise WeightsFileError(
                f"{p} is a folder without {RUN_WEIGHTS}; pass a run folder written by "
                "`resnetv2 train` or a .safetensors weights file"
            )
        return candidate
    if not p.exists():
        raise FileNotFoundError(f"no such weights file or run folder: {p}")
    return p


def save_model(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    class_names: list[str] | None = None,
    preprocessing: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata atomically to ``path`` (a ``.safetensors`` file)."""
    from resnetv2.io import save_weights, unwrap_model
    from resnetv2.nn.model import spec_of

    spec = spec_of(model)
    if class_names is not None and spec.num_classes and len(class_names) != spec.num_classes:
        raise WeightsFileError(
            f"{len(class_names)} class names for a model with {spec.num_classes} classes"
        )
    metadata: dict[str, Any] = dict(extra or {})
    metadata.update(
        {
            "spec": spec.to_dict(),
            "class_names": list(class_names) if class_names is not None else None,
            "preprocessing": preprocessing or default_preprocessing(spec),
            "num_params": sum(p.numel() for p in model.parameters()),
        }
    )
    inner = unwrap_model(model)
    pool = getattr(getattr(inner, "head", None), "global_pool", "avg")
    if pool != "avg":  # a reset_classifier(global_pool=...) choice the spec does not hold
        metadata["global_pool"] = pool
    state = {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()}
    save_weights(path, state, metadata)
    return Path(path)


def load_model(
    path: str | os.PathLike[str], *, device: torch.device | str | None = None
) -> torch.nn.Module:
    """Rebuild the model stored at ``path`` (a weights file, a run folder, or a
    :func:`save_pretrained` folder).

    The returned :class:`~resnetv2.nn.ResNetV2` is in eval mode and carries the file's
    metadata as ``model.metadata`` (a folder's ``config.json`` overriding it). Loading is
    strict: any missing, unexpected or mis-shaped tensor raises an error listing them.
    """
    return Weights.from_file(path).build(device=device)


@dataclass(frozen=True, eq=False)
class Weights:
    """A network's weights with everything needed to use them: the ``spec`` they fit, the
    ``state_dict`` under our module names, and their ``metadata`` (class names,
    preprocessing, where they came from; ``metadata.spec`` is ``spec``). ``source`` names
    them in error messages (the file, or the hub name they were fetched by).

    Read one with :meth:`from_file` or :func:`resnetv2.convert.weights_from_source`; then
    :meth:`build` the model they describe, or :meth:`load_into` a model with another head.
    """

    spec: ResNetV2Spec
    state_dict: Mapping[str, torch.Tensor]
    metadata: ModelMetadata = field(default_factory=ModelMetadata)
    source: str | None = None

    def __post_init__(self) -> None:
        if self.metadata.spec != self.spec:
            object.__setattr__(self, "metadata", self.metadata.replace(spec=self.spec))

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return self.metadata.class_names

    @property
    def preprocessing(self) -> PreprocessingSpec | None:
        """The input these weights expect, ``None`` when they record none."""
        block = self.metadata.preprocessing
        return None if block is None else PreprocessingSpec.from_metadata(block)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Weights:
        """Read a resnetv2 weights file, a run folder or a :func:`save_pretrained` folder
        (its ``config.json`` overriding the file's metadata); the class names and
        preprocessing are checked (:func:`check_weights_metadata`)."""
        from resnetv2.io import load_weights

        weights = resolve_weights_path(path)
        state, metadata = load_weights(weights)
        if Path(path).is_dir():
            metadata.update(_folder_config(weights.parent))
        if not isinstance(metadata.get("spec"), dict):
            raise WeightsFileError(
                f"{weights} has no resnetv2 spec in its metadata; to use weights from timm, "
                "pytorchcv or Keras, import them with `resnetv2 convert` first"
            )
        spec = ResNetV2Spec.from_dict(metadata["spec"])
        check_weights_metadata(metadata, spec, weights)
        return cls(spec, state, ModelMetadata.from_dict(metadata), source=str(weights))

    def build(self, *, device: torch.device | str | None = None) -> ResNetV2:
        """The :class:`~resnetv2.nn.ResNetV2` these weights describe, strictly loaded (any
        missing, unexpected or mis-shaped tensor raises), carrying :attr:`metadata`, in eval
        mode."""
        from resnetv2.io import load_state_dict_strict
        from resnetv2.nn.model import ResNetV2

        model = ResNetV2(self.spec, global_pool=self.metadata.global_pool or "avg")
        load_state_dict_strict(model, dict(self.state_dict), source=self.source)
        model.metadata = self.metadata
        if device is not None:
            model.to(device)
        return model.eval()

    def load_into(self, model: ResNetV2) -> ResNetV2:
        """Load these weights into ``model``, whose backbone must equal theirs (same stem,
        stages, widths, norm, conventions — otherwise a :class:`ResNetV2Error` lists the
        differences); head and regularisation fields may differ.

        The backbone is loaded strictly, the head too when its tensors fit, else it keeps its
        fresh initialisation. ``model.metadata`` becomes these weights' metadata with
        ``head_reinitialised`` recorded (and no class names when the head was not loaded).
        Returns ``model``, in eval mode.
        """
        from resnetv2.io import load_state_dict_strict

        diffs = backbone_differences(model.spec, self.spec)
        if diffs:
            raise ResNetV2Error(
                f"the weights in {self.source!r} were made for a different backbone: "
                + "; ".join(diffs)
                + ". Drop the architecture options to use the weights' own architecture."
            )
        current = model.state_dict()
        head_keys = [k for k in current if k.startswith("head.")]
        head_fits = set(head_keys) == {k for k in self.state_dict if k.startswith("head.")} and all(
            self.state_dict[k].shape == current[k].shape for k in head_keys
        )
        merged = {k: v for k, v in self.state_dict.items() if not k.startswith("head.")}
        merged.update({k: (self.state_dict[k] if head_fits else current[k]) for k in head_keys})
        load_state_dict_strict(model, merged, source=self.source)
        model.metadata = self.metadata.replace(
            head_reinitialised=not head_fits,
            class_names=self.metadata.class_names if head_fits else None,
        )
        return model.eval()


def backbone_differences(a: ResNetV2Spec, b: ResNetV2Spec) -> list[str]:
    """Spec fields (other than head and regularisation) on which ``a`` and ``b`` differ."""
    diffs = []
    for f in dataclasses.fields(ResNetV2Spec):
        if f.name in HEAD_AND_REGULARISATION_FIELDS:
            continue
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if va != vb:
            diffs.append(f"{f.name}: {va!r} (model) vs {vb!r} (weights)")
    return diffs


def check_weights_metadata(metadata: dict[str, Any], spec: ResNetV2Spec, source) -> None:
    """Refuse class names and preprocessing metadata the model cannot be used with.

    Checked at load, where the metadata is consumed: unchecked, an ``input_size`` of
    ``[0, 0]`` or ``[200000, 200000]`` makes ``predict`` call every good image corrupt, and a
    short ``class_names`` list silently falls back to numbers.
    """
    from resnetv2.data.load import check_image_size
    from resnetv2.data.preprocessing import Preprocessing

    names = metadata.get("class_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise WeightsFileError(f"{source}: class_names must be a list of strings")
        if spec.num_classes and len(names) != spec.num_classes:
            raise WeightsFileError(
                f"{source}: {len(names)} class_names for a model with {spec.num_classes} "
                "classes; the file is damaged or was edited"
            )
    block = metadata.get("preprocessing")
    if block is not None:
        try:
            if not isinstance(block, dict):
                raise ValueError(f"expected a mapping, got {type(block).__name__}")
            prep = Preprocessing.from_metadata(block)
            check_image_size(prep.input_size)
        except ValueError as exc:
            raise WeightsFileError(
                f"{source}: invalid preprocessing metadata ({str(exc)[:200]})"
            ) from None
        if prep.in_channels != spec.in_channels:
            raise WeightsFileError(
                f"{source}: preprocessing in_channels {prep.in_channels} but the model takes "
                f"{spec.in_channels}"
            )


def _folder_config(folder: Path) -> dict[str, Any]:
    """The metadata keys a folder's ``config.json`` sets (empty when it has none)."""
    import json

    from resnetv2 import jsontext

    path = folder / CONFIG_JSON
    if not path.is_file():
        return {}
    try:
        config = jsontext.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsFileError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise WeightsFileError(f"{path} must hold a JSON object, got {type(config).__name__}")
    if "spec" not in config:
        raise WeightsFileError(
            f"{path} has no resnetv2 'spec' (a config written by another library?); write the "
            "folder with resnetv2.save_pretrained, or import the weights with `resnetv2 convert`"
        )
    return {k: config[k] for k in _CONFIG_METADATA_KEYS if k in config}


def save_pretrained(
    model: torch.nn.Module,
    directory: str | os.PathLike[str],
    *,
    class_names: list[str] | None = None,
    preprocessing: dict[str, Any] | None = None,
) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors`` (hub layout).

    ``config.json`` holds the spec, the preprocessing, the class names, timm's
    ``pretrained_cfg`` and ``label_names`` (the keys timm's own hub configs use);
    ``model.safetensors`` carries the same metadata, so either file alone rebuilds the model.
    Class names and preprocessing default to the model's own (``model.metadata``, set when
    it was loaded). Read the folder back with :func:`load_model` or
    ``create_model(pretrained=DIR)``.
    """
    import json

    from resnetv2._version import __version__
    from resnetv2.io import read_weights_metadata, unwrap_model
    from resnetv2.io.atomic import atomic_write_text
    from resnetv2.nn.model import spec_of

    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    own = metadata_of(unwrap_model(model))
    names = class_names if class_names is not None else own.class_names
    names = list(names) if names is not None else None
    pre = preprocessing or own.preprocessing
    save_model(model, folder / RUN_WEIGHTS, class_names=names, preprocessing=pre)
    metadata = read_weights_metadata(folder / RUN_WEIGHTS)
    spec = spec_of(model)
    config = {
        "architecture": spec.name or f"resnetv2_depth{spec.depth}",
        "library": "resnetv2",
        "library_version": __version__,
        "num_classes": spec.num_classes,
        "num_features": spec.num_features,
        "label_names": metadata.get("class_names"),
        "pretrained_cfg": _pretrained_cfg_json(model, metadata),
        **{k: metadata[k] for k in _CONFIG_METADATA_KEYS if k in metadata},
    }
    atomic_write_text(folder / CONFIG_JSON, json.dumps(config, indent=2) + "\n")
    return folder


def _pretrained_cfg_json(model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
    from types import SimpleNamespace

    from resnetv2.nn.model import spec_of
    from resnetv2.nn.pretrained_cfg import pretrained_cfg

    described = SimpleNamespace(spec=spec_of(model), metadata=ModelMetadata.from_dict(metadata))
    cfg = pretrained_cfg(described)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
