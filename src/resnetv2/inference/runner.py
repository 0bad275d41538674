"""Runners: a preprocessed float ``[N, C, H, W]`` batch in, float32 logits out.

This is the one narrow interface the predictor and the evaluation loop call: they own the
preprocessing (decoding, resizing, normalising) and hand a ready batch to
``runner(batch)``; which engine computes the logits is decided once, by :func:`make_runner`.

- :class:`TorchRunner` — the eager model, fp32 or (explicitly asked for) bf16 autocast.
- :class:`OnnxRuntimeRunner` — an onnxruntime CPU session over the cached, parity-checked
  ONNX export of the same weights (:mod:`resnetv2.inference.cache`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from resnetv2.inference.engines import EngineUnavailableError, check_choice, resolve_engine
from resnetv2.limits import MAX_THREADS, check_count

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger("resnetv2.inference")


def _threads(threads: int | None) -> int | None:
    if threads is None:
        return None
    return check_count("threads", threads, 1, MAX_THREADS)


class TorchRunner:
    """Eager PyTorch: the reference every other engine is held to."""

    name = "torch"
    # PyTorch's own intra-op threads compute the forward pass.
    own_threads = False

    def __init__(self, model: nn.Module, device: Any = None, precision: str = "fp32") -> None:
        import torch

        self.model = model.eval()
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.precision = precision

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            batch = batch.to(self.device)
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    return self.model(batch).float()
            return self.model(batch).float()


class OnnxRuntimeRunner:
    """An onnxruntime CPU session; logits come back as a CPU float32 tensor."""

    name = "onnxruntime"
    precision = "fp32"
    # The session computes with its own worker threads: the tensor ops around a batch
    # (normalise, mirror, softmax) belong on one PyTorch thread, see
    # :func:`resnetv2.device.one_intra_op_thread`.
    own_threads = True

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        # The same thread count as PyTorch by default (it honours OMP_NUM_THREADS and
        # torch.set_num_threads), one inter-op thread: a ResNet is one chain of ops.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # onnxruntime's default: idle workers spin briefly before sleeping. A ResNet is a
        # chain of short kernels, and waking sleeping workers for each one cost more than the
        # spinning takes from decoding between batches (measured: `resnetv2 predict`, CIFAR
        # ResNet-56, 2,000 files, 2 cores: 3.13 s with sleeping workers, 2.96 s spinning).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.log_severity_level = 3
        self.path = os.fspath(path)
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


def make_runner(
    model: nn.Module,
    *,
    engine: str | None = None,
    precision: str = "fp32",
    device: Any = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
):
    """The runner for ``engine`` (``auto``/``torch``/``onnxruntime``; ``None`` = default).

    ``auto`` falls back to torch (with a log line) when the export or the session fails, so
    an unusual model still predicts; an explicit ``onnxruntime`` raises instead.
    ``threads`` sets PyTorch's intra-op threads (process-wide) and onnxruntime's.
    """
    import torch

    threads = _threads(threads)
    device = torch.device(device) if device is not None else _model_device(model)
    requested, precision = check_choice(engine, precision)
    chosen = resolve_engine(requested, device.type, precision)
    if threads is not None:
        torch.set_num_threads(threads)
    if chosen == "onnxruntime":
        try:
            return _onnxruntime_runner(model, threads, cache_dir)
        except EngineUnavailableError:
            raise
        except Exception as exc:
            if requested == "onnxruntime":
                raise
            log.warning("onnxruntime unavailable for these weights (%s); using torch", exc)
    return TorchRunner(model, device, precision)


def _onnxruntime_runner(model: nn.Module, threads: int | None, cache_dir) -> OnnxRuntimeRunner:
    from resnetv2.inference.cache import CacheEntry, cached_onnx

    path = cached_onnx(model.eval(), cache_dir=cache_dir)
    try:
        return OnnxRuntimeRunner(path, threads)
    except Exception as exc:  # noqa: BLE001 - a file that passed its checksum but won't load
        log.info("cached export %s does not load (%s); exporting again", path, exc)
        CacheEntry(path.parent, path.stem).remove()
        return OnnxRuntimeRunner(cached_onnx(model, cache_dir=cache_dir), threads)


def _model_device(model: nn.Module) -> torch.device:
    import torch

    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")
