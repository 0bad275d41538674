"""What a model's weights say about it besides the tensors, as pure data beside the spec.

A :class:`ModelMetadata` is the metadata document of a weights file with its fields declared:
the spec the weights were saved for, the class names, the ``preprocessing`` block (see
:class:`~resnetv2.preprocessing_spec.PreprocessingSpec`), the parameter count, a non-default
global pooling, where imported weights came from, and — after fine-tuning initialisation —
whether the head was re-initialised. Anything else the file records (the training run's
epoch and metrics, the format version, the checksum) is kept in ``extra``.

A model carries one as ``model.metadata`` (``None`` for a freshly built model): a
:class:`MetadataSlot` declares that attribute on :class:`~resnetv2.nn.ResNetV2` and
:class:`~resnetv2.nn.features.ResNetV2Features`. It is also a read-only mapping whose items
are the JSON document (``model.metadata["class_names"]`` is a list, ``["spec"]`` a dict), so
code that reads the weights file's keys reads a model's metadata the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from resnetv2.spec import ResNetV2Spec

#: The document keys that are declared fields (everything else goes to ``extra``).
_FIELDS = (
    "spec",
    "class_names",
    "preprocessing",
    "num_params",
    "global_pool",
    "imported_from",
    "head_reinitialised",
)


@dataclass(frozen=True, eq=False)
class ModelMetadata(Mapping[str, Any]):
    """The metadata of a model's weights; see the module docstring. Every field is optional:
    a model assigned a partial mapping (``{"class_names": [...]}``) carries just that."""

    #: The architecture the weights were saved for (a fine-tuned model's own may differ).
    spec: ResNetV2Spec | None = None
    #: One name per output class, in logit order.
    class_names: tuple[str, ...] | None = None
    #: The ``preprocessing`` block as saved (:meth:`PreprocessingSpec.to_metadata`'s keys).
    preprocessing: Mapping[str, Any] | None = None
    #: Parameters in the saved network.
    num_params: int | None = None
    #: A global pooling other than ``avg`` (set by ``reset_classifier(global_pool=...)``).
    global_pool: str | None = None
    #: For converted weights: the library, model name and file they came from.
    imported_from: Mapping[str, Any] | None = None
    #: After loading into another head: True when the head kept its fresh initialisation.
    head_reinitialised: bool | None = None
    #: Every other key of the weights file's metadata (training record, format, checksum).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
        for name in ("preprocessing", "imported_from", "extra"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, dict(value))

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ModelMetadata:
        """Read a weights file's metadata document (a ``spec`` dict becomes a spec)."""
        values = {k: document[k] for k in _FIELDS if document.get(k) is not None}
        if isinstance(values.get("spec"), Mapping):
            values["spec"] = ResNetV2Spec.from_dict(dict(values["spec"]))
        extra = {k: v for k, v in document.items() if k not in _FIELDS}
        return cls(**values, extra=extra)

    @classmethod
    def coerce(cls, value: ModelMetadata | Mapping[str, Any] | None) -> ModelMetadata | None:
        """``value`` as a :class:`ModelMetadata` (a mapping is read with :meth:`from_dict`)."""
        if value is None or isinstance(value, ModelMetadata):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise TypeError(f"model metadata must be a mapping or None, got {type(value).__name__}")

    def replace(self, **changes: Any) -> ModelMetadata:
        """A copy with ``changes`` (field names) applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: ``extra``'s keys and every field that is set."""
        document = dict(self.extra)
        for name in _FIELDS:
            value = self._json(name)
            if value is not None:
                document[name] = value
        return document

    def _json(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            return None
        if name == "spec":
            return value.to_dict()
        if name == "class_names":
            return list(value)
        return dict(value) if isinstance(value, Mapping) else value

    # -- the read-only mapping over the document ------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in _FIELDS:
            value = self._json(key)
            if value is None:
                raise KeyError(key)
            return value
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __repr__(self) -> str:
        return f"ModelMetadata({self.to_dict()!r})"


class MetadataSlot:
    """Declares a module's ``metadata`` attribute: a :class:`ModelMetadata` or ``None``
    (the default). Assigning a mapping stores it as :class:`ModelMetadata`; ``del`` resets
    it to ``None``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f"_{name}"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__.get(self._key)

    def __set__(self, obj: Any, value: ModelMetadata | Mapping[str, Any] | None) -> None:
        obj.__dict__[self._key] = ModelMetadata.coerce(value)

    def __delete__(self, obj: Any) -> None:
        obj.__dict__.pop(self._key, None)


def metadata_of(model: Any) -> ModelMetadata:
    """The metadata ``model`` carries (empty for a module that carries none, such as a
    freshly built model or one from another library)."""
    return ModelMetadata.coerce(getattr(model, "metadata", None)) or ModelMetadata()


__all__ = ["MetadataSlot", "ModelMetadata", "metadata_of"]
