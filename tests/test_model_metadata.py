"""``ModelMetadata``: a weights file's metadata with declared fields, and ``model.metadata``."""

import copy

import pytest

from resnetv2 import make_spec
from resnetv2.model_metadata import MetadataSlot, ModelMetadata, metadata_of

SPEC = make_spec(8, num_classes=2)
DOCUMENT = {
    "spec": SPEC.to_dict(),
    "class_names": ["no", "yes"],
    "preprocessing": {"input_size": [16, 16], "in_channels": 3, "mean": [0.5] * 3},
    "num_params": 1234,
    "global_pool": "max",
    "imported_from": {"library": "timm", "model": "resnetv2_18"},
    "head_reinitialised": False,
    "epoch": 3,
    "metrics": {"val_acc": 0.5},
}


def test_a_document_round_trips_with_its_fields_declared():
    meta = ModelMetadata.from_dict(DOCUMENT)
    assert meta.spec == SPEC
    assert meta.class_names == ("no", "yes")
    assert meta.num_params == 1234 and meta.global_pool == "max"
    assert meta.imported_from == {"library": "timm", "model": "resnetv2_18"}
    assert meta.head_reinitialised is False
    assert meta.extra == {"epoch": 3, "metrics": {"val_acc": 0.5}}
    assert meta.to_dict() == DOCUMENT
    assert ModelMetadata.from_dict(meta.to_dict()).to_dict() == DOCUMENT


def test_it_reads_as_the_json_document():
    meta = ModelMetadata.from_dict(DOCUMENT)
    assert meta["class_names"] == ["no", "yes"] and meta["spec"] == SPEC.to_dict()
    assert meta["epoch"] == 3 and dict(meta) == DOCUMENT and len(meta) == len(DOCUMENT)
    assert meta == DOCUMENT
    partial = ModelMetadata.from_dict({"class_names": None, "epoch": 1})
    assert "class_names" not in partial and partial.get("class_names") is None
    with pytest.raises(KeyError):
        partial["preprocessing"]
    assert dict(partial) == {"epoch": 1}


def test_it_is_frozen_and_copies_what_it_is_given():
    block = {"input_size": [8, 8]}
    meta = ModelMetadata(preprocessing=block)
    block["input_size"] = [9, 9]
    assert meta.preprocessing == {"input_size": [8, 8]}
    with pytest.raises(AttributeError):
        meta.class_names = ("a",)
    changed = meta.replace(class_names=["a"])
    assert changed.class_names == ("a",) and meta.class_names is None


def test_coerce_accepts_metadata_mappings_and_none_only():
    meta = ModelMetadata(class_names=["a"])
    assert ModelMetadata.coerce(meta) is meta
    assert ModelMetadata.coerce(None) is None
    assert ModelMetadata.coerce({"class_names": ["a"]}).class_names == ("a",)
    with pytest.raises(TypeError, match="mapping"):
        ModelMetadata.coerce(["a"])


class _Carrier:
    metadata = MetadataSlot()


def test_the_slot_stores_metadata_and_deletes_to_none():
    carrier = _Carrier()
    assert carrier.metadata is None
    carrier.metadata = {"class_names": ["a", "b"], "epoch": 2}
    assert isinstance(carrier.metadata, ModelMetadata)
    assert carrier.metadata.class_names == ("a", "b") and carrier.metadata["epoch"] == 2
    assert copy.deepcopy(carrier).metadata == carrier.metadata
    del carrier.metadata
    assert carrier.metadata is None
    assert isinstance(_Carrier.metadata, MetadataSlot)


def test_metadata_of_reads_any_object():
    carrier = _Carrier()
    assert metadata_of(object()) == {} and metadata_of(carrier) == {}
    carrier.metadata = {"class_names": ["a"]}
    assert metadata_of(carrier) is carrier.metadata

    class Plain:
        metadata = {"preprocessing": {"input_size": [4, 4]}}

    assert metadata_of(Plain()).preprocessing == {"input_size": [4, 4]}
