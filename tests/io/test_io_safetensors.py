"""Malformed safetensors files raise a typed error quickly, with bounded memory.

The header checks are the safetensors library's own; these files prove each refusal reaches
the user as a :class:`CorruptWeightsError` naming the file and the problem.
"""

import json
import struct
import time
import tracemalloc

import pytest
import torch
from safetensors.torch import save_file

import resnetv2
from resnetv2.io import CorruptWeightsError, load_weights, read_safetensors, write_safetensors
from resnetv2.io.weights import read_safetensors_metadata

MAX_HEADER_BYTES = 100_000_000  # the safetensors library's cap on a header


def _raw_file(path, header, data=b"", header_len=None):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    length = len(text) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", length) + text + data)
    return path


def _f32(offsets, shape=(2,)):
    return {"dtype": "F32", "shape": list(shape), "data_offsets": list(offsets)}


def test_round_trip_is_bitwise_and_records_reserved_fields(tmp_path):
    tensors = {
        "w": torch.randn(3, 4),
        "half": torch.randn(5).to(torch.bfloat16),
        "flags": torch.tensor([True, False]),
        "rng": torch.get_rng_state(),
        "empty": torch.zeros(0, 3),
    }
    digest = write_safetensors(tmp_path / "t.safetensors", tensors, {"spec": {"depth": 18}})
    assert digest.size == (tmp_path / "t.safetensors").stat().st_size
    loaded, metadata = read_safetensors(tmp_path / "t.safetensors")
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)
    assert metadata["spec"] == {"depth": 18}
    assert metadata["format_version"] == 1
    expected_version = getattr(resnetv2, "__version__", None) or "0.1.0"
    assert metadata["library_version"] == expected_version
    assert len(metadata["tensors_sha256"]) == 64
    assert read_safetensors_metadata(tmp_path / "t.safetensors") == metadata


def test_header_length_larger_than_file_is_rejected_without_reading_it(tmp_path):
    path = _raw_file(tmp_path / "huge.safetensors", b"{}", header_len=2**62)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(CorruptWeightsError, match="header too large") as info:
        load_weights(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 1_000_000
    assert str(path) in str(info.value)


def test_header_length_above_the_cap_is_rejected_even_if_the_file_is_big(tmp_path):
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", MAX_HEADER_BYTES + 1))
        handle.truncate(MAX_HEADER_BYTES + 100)  # sparse: costs no disk space
    tracemalloc.start()
    with pytest.raises(CorruptWeightsError, match="header too large"):
        load_weights(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize(
    ("header", "data", "expected"),
    [
        ({"a": _f32([0, 8]), "b": _f32([4, 12])}, bytes(12), "invalid offset for tensor `b`"),
        ({"a": _f32([0, 8]), "b": _f32([8, 24], shape=(4,))}, bytes(16), "not fully covered"),
        ({"a": _f32([0, 8]), "b": _f32([12, 20])}, bytes(20), "invalid offset for tensor `b`"),
        ({"a": _f32([0, 8])}, bytes(12), "not fully covered"),
        ({"a": _f32([0, 12])}, bytes(12), "invalid shape, data type, or offset"),
        ({"a": _f32([8, 0])}, bytes(8), "invalid offset for tensor `a`"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), "-2"),
        ({"a": {"dtype": "X99", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "X99"),
        ({"a": _f32([0, 8]), "__metadata__": {"k": 1}}, bytes(8), "expected a string"),
        (b"[1, 2, 3]", b"", "invalid type: sequence"),
        (b"\xff\xfe garbage", b"", "invalid UTF-8"),
        (b'{"a": 1, "a": 2}', b"", "invalid JSON"),
    ],
)
def test_malformed_headers_raise_a_typed_error(tmp_path, header, data, expected):
    path = _raw_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(CorruptWeightsError, match=expected) as info:
        load_weights(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_tiny_file_is_rejected(tmp_path):
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(CorruptWeightsError, match="header too small"):
        load_weights(tmp_path / "tiny.safetensors")


def test_truncated_file_is_rejected(tmp_path):
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"w": torch.randn(64)})
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptWeightsError, match="truncated"):
        load_weights(path)


def test_flipped_data_byte_fails_the_checksum(tmp_path):
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"w": torch.zeros(64)})
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptWeightsError, match="checksum"):
        load_weights(path)
    tensors, _ = load_weights(path, verify=False)  # the damage is real, not a false alarm
    assert not torch.equal(tensors["w"], torch.zeros(64))


def test_garbage_metadata_json_is_rejected(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(2)}, path, metadata={"resnetv2": "{not json"})
    with pytest.raises(CorruptWeightsError, match="not valid JSON"):
        load_weights(path)


def test_third_party_file_loads_with_its_own_metadata(tmp_path):
    path = tmp_path / "hub.safetensors"
    save_file({"fc.weight": torch.ones(2, 2)}, path, metadata={"format": "pt"})
    tensors, metadata = load_weights(path)
    assert metadata == {"format": "pt"}
    assert torch.equal(tensors["fc.weight"], torch.ones(2, 2))


def test_tensors_sharing_memory_are_stored_as_copies(tmp_path):
    shared = torch.arange(6.0)
    write_safetensors(tmp_path / "tied.safetensors", {"a": shared, "b": shared, "c": shared[:3]})
    loaded, _ = read_safetensors(tmp_path / "tied.safetensors")
    assert torch.equal(loaded["a"], shared) and torch.equal(loaded["b"], shared)
    assert torch.equal(loaded["c"], shared[:3])


def test_non_json_metadata_is_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="JSON-serialisable"):
        write_safetensors(tmp_path / "w.safetensors", {"w": torch.zeros(1)}, {"bad": object()})
    assert list(tmp_path.iterdir()) == []
