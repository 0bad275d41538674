"""Decide before any download whether a hub name can be fetched at all.

Offline, ``timm.create_model(name, pretrained=True)`` spends ~53 s in huggingface_hub's
retries (five back-offs per candidate file) before failing, and pytorchcv's store retries
too. The fetchers therefore ask here first, in this order:

1. the local cache: a file timm (Hugging Face cache) or pytorchcv (``~/.torch/models``)
   downloaded earlier is used as it is, with no network call;
2. offline mode (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``): fail at once;
3. one TCP connection to the host (3 s timeout; skipped behind a proxy, which only the
   library's own client knows how to use): fail at once when it cannot be made.

Only then does the library's own download code run.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "on", "yes", "true"}
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hf_offline() -> bool:
    """Whether Hugging Face offline mode is on (environment, or huggingface_hub's constant)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def hf_cached_file(hub_id: str) -> str | None:
    """The cached weights of Hugging Face repo ``hub_id`` (``repo@revision`` allowed), if any;
    safetensors first, as timm's loader prefers them."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo, _, revision = hub_id.partition("@")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def hf_host() -> str:
    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except ImportError:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return urlparse(endpoint).hostname or "huggingface.co"


def unreachable(host: str, port: int = 443) -> str | None:
    """Why ``host`` cannot be reached (None when it can, or when a proxy is configured)."""
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return None
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"cannot reach {host}: {exc}"
    return None


def timm_download_blocker(hub_id: str) -> str | None:
    """Why timm's weights at ``hub_id`` cannot be downloaded now (None: try it)."""
    if hf_offline():
        return "offline mode (HF_HUB_OFFLINE) is on and the weights are not in the local cache"
    reason = unreachable(hf_host())
    return f"not in the local cache and {reason}" if reason else None


def pytorchcv_cached_file(name: str) -> str | None:
    """pytorchcv's stored weights file for ``name`` in ``~/.torch/models``, if present."""
    try:
        from pytorchcv.models.common.model_store import get_model_name_suffix_data
    except ImportError:
        return None
    try:
        error, sha1, _ = get_model_name_suffix_data(name)
    except (KeyError, ValueError):
        return None
    path = os.path.expanduser(
        os.path.join("~", ".torch", "models", f"{name}-{error}-{sha1[:8]}.pth")
    )
    return path if os.path.isfile(path) else None


def pytorchcv_download_blocker() -> str | None:
    """Why pytorchcv's GitHub-hosted weights cannot be downloaded now (None: try it)."""
    reason = unreachable("github.com")
    return f"not in ~/.torch/models and {reason}" if reason else None
