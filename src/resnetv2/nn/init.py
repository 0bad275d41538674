"""Weight initialisation, documented in one place.

- Convs: Kaiming normal, fan-out, ReLU gain (He et al. 2015, as in the paper's code and
  timm/torchvision); conv biases zero.
- Classifier (linear or 1×1 conv ``head.fc``) and the dense head: normal(0, 0.01), bias zero.
- Norm layers: weight one, bias zero, running statistics reset.
- ``zero_init_last``: the last conv of every residual branch starts at zero, so each unit
  starts as the identity (Goyal et al. 2017).
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def init_weights(model: nn.Module, zero_init_last: bool = False) -> None:
    """Initialise the parameters of a freshly constructed ``model`` by the rules above."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and not name.startswith("head."):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(module.weight, mean=0.0, std=0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            # Freshly constructed norms already hold weight 1, bias 0 and reset statistics.
            continue
        elif any(True for _ in module.parameters(recurse=False)):
            # A new layer type must get an explicit rule here rather than a silent default.
            raise TypeError(f"no initialisation rule for {name} ({type(module).__name__})")
    if zero_init_last:
        for module in model.modules():
            if hasattr(module, "zero_init_last") and callable(module.zero_init_last):
                module.zero_init_last()
