"""The one device resolver: auto everywhere, and a one-line refusal of a missing device."""

import pytest
import torch

from resnetv2.device import resolve_device
from resnetv2.errors import ResNetV2Error


@pytest.mark.parametrize("name", [None, "auto"])
def test_auto_is_cuda_when_available_else_cpu(name):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(name).type == expected


def test_explicit_devices_pass_through():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu0", "cuda:x", ""])
def test_names_torch_does_not_know_are_refused_with_the_valid_ones(name):
    with pytest.raises(ResNetV2Error, match="auto .*cpu, cuda or cuda:N"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1", torch.device("cuda", 0)])
def test_missing_cuda_is_a_user_error_not_a_traceback(name):
    with pytest.raises(ResNetV2Error, match="no CUDA device is available here"):
        resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_index_beyond_the_machine_is_refused():
    with pytest.raises(ResNetV2Error, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_one_intra_op_thread_restores_the_setting_even_after_an_error():
    from resnetv2.device import one_intra_op_thread

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError), one_intra_op_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


class _Engine:
    """A stand-in forward function; ``own_threads`` as the inference runners declare it."""

    def __init__(self, own_threads: bool) -> None:
        self.own_threads = own_threads


@pytest.mark.parametrize(
    ("forward", "inside"), [(_Engine(True), 1), (_Engine(False), 2), (None, 2)]
)
def test_engine_threads_leaves_one_pytorch_thread_only_beside_an_engine_with_its_own(
    forward, inside
):
    from resnetv2.device import engine_threads

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with engine_threads(forward):
            assert torch.get_num_threads() == inside
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
