"""The optimisers a training config can name (``optim.name``): one registry, torch-free.

Each entry says which ``torch.optim`` class trains with it, which :class:`OptimConfig`
fields it takes as keyword arguments, and how many parameter-sized state buffers it keeps.
Everything that names optimisers reads :data:`OPTIMIZERS`:

* the config's allowed ``optim.name`` values and the CLI's ``--optimizer`` choices
  (:mod:`resnetv2.config.validate`, :mod:`resnetv2.cli.train`), with "did you mean";
* the option rules: a switch such as ``nesterov`` or ``amsgrad`` needs an optimiser whose
  ``options`` hold it;
* :func:`resnetv2.engine.optim.build_optimizer`, which looks the class up in ``torch.optim``
  and passes it the ``options``;
* the memory estimate's optimiser state (:data:`resnetv2.memory.estimate.OPTIMIZER_STATE`).

So an optimiser from ``torch.optim`` is added here, with its test, and nowhere else (a new
option is also a field of :class:`resnetv2.config.sections.OptimConfig`). The module is
pure data, below the config and the memory estimate, so neither needs torch to read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Optimizer:
    """One optimiser of :data:`OPTIMIZERS`."""

    #: The class's name in ``torch.optim``.
    torch_class: str
    #: :class:`~resnetv2.config.sections.OptimConfig` fields passed to the class as keyword
    #: arguments of the same name (lists as tuples of floats). ``lr`` and ``weight_decay``
    #: are always set, per parameter group.
    options: tuple[str, ...]
    #: Parameter-sized state buffers kept per parameter (SGD's momentum: 1; Adam's two
    #: moments: 2), for the memory estimate.
    state_per_param: int


OPTIMIZERS: dict[str, Optimizer] = {
    # Momentum (optionally Nesterov's).
    "sgd": Optimizer("SGD", ("momentum", "nesterov"), state_per_param=1),
    # Decoupled weight decay (Loshchilov & Hutter 2019).
    "adamw": Optimizer("AdamW", ("betas", "eps", "amsgrad"), state_per_param=2),
    # Weight decay as L2 added to the gradient; AMSGrad as in the seed tutorial.
    "adam": Optimizer("Adam", ("betas", "eps", "amsgrad"), state_per_param=2),
}
"""Optimiser name → :class:`Optimizer`, in the order the CLI lists them."""


def takes(name: str, option: str) -> bool:
    """Whether optimiser ``name`` takes config option ``option`` (False for unknown names)."""
    entry = OPTIMIZERS.get(name)
    return entry is not None and option in entry.options


def taking(option: str) -> list[str]:
    """The optimisers that take ``option``, sorted by name."""
    return sorted(name for name, entry in OPTIMIZERS.items() if option in entry.options)
