"""The typed sections of a training config (what each YAML key means and its default)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from resnetv2.errors import ResNetV2Error

DEFAULT_RECIPE = "digits"


class ConfigError(ResNetV2Error, ValueError):
    """A recipe or config is invalid: unknown key, wrong type or out-of-range value."""


@dataclass
class BudgetNet:
    """One candidate net of a budget-native recipe (``model.by_budget``): ``depth`` and spec
    ``options`` as in :class:`ModelConfig`, chosen when ``min_epochs`` of it fit the budget."""

    min_epochs: float = 0.0
    depth: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class ModelConfig:
    """The architecture: a preset or a depth, plus any spec option (``resnetv2 depths``).

    ``options`` holds :func:`resnetv2.make_spec` options (``widths``, ``block``,
    ``drop_path_rate``...). ``num_classes`` and ``in_channels`` default to the data's.

    Fine-tuning (the seed tutorial's two modes, :mod:`resnetv2.finetune`): ``init_weights``
    is a weights file, a run folder, ``timm:NAME`` or ``pytorchcv:NAME``
    (:func:`resnetv2.convert.load_init_weights`). Without a preset, depth or backbone option
    the architecture is the weights' own. The model always gets a new classifier head for
    the data's classes (``options.head: dense`` for the tutorial's dense head).
    ``freeze: backbone`` trains the head only (frozen BatchNorm keeps its statistics);
    ``none`` trains everything, the pretrained layers at ``backbone_lr_scale`` × the lr.

    ``by_budget`` (budget-native recipes): candidate nets, largest first. With a ``--time``
    budget the trainer times a step of each and trains the first whose ``min_epochs`` fit
    (:mod:`resnetv2.engine.net_choice`); without a budget, or when the command line names the
    architecture, the list is ignored and ``depth``/``options`` are trained.
    ``whiten_stem`` (``frozen`` or ``trainable``) initialises the stem conv from the training
    images' patch covariance (Page's ResNet-9; airbench, arXiv:2404.00498;
    :mod:`resnetv2.nn.whitening`); ``frozen`` then keeps it fixed. The net stays the spec's.
    """

    preset: str | None = None
    depth: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None
    freeze: Literal["backbone", "none"] = "none"
    backbone_lr_scale: float = 1.0
    by_budget: list[BudgetNet] = field(default_factory=list)
    whiten_stem: Literal["off", "frozen", "trainable"] = "off"

    def architecture_given(self) -> bool:
        """Whether a preset, depth or backbone option is set (not only head options)."""
        return (
            self.preset is not None
            or self.depth is not None
            or any(k not in HEAD_OPTION_NAMES for k in self.options)
        )


#: ``model.options`` that describe the classifier head only; with ``init_weights`` they
#: shape the new head and leave the pretrained backbone's architecture alone.
HEAD_OPTION_NAMES = frozenset(
    {"head", "head_hidden", "head_dropout", "dropout", "classifier", "num_classes", "in_channels"}
)


@dataclass
class DataConfig:
    """Where the images come from and how batches are made (see ``docs/data.md``).

    ``image_size`` (``PX`` or ``[H, W]``) resizes every image; ``channels`` (1 or 3)
    converts images to grayscale or RGB; ``mean``/``std`` (both or neither) fix the
    normalisation instead of measuring it on the training split. With
    ``model.init_weights`` all four default to the weights' preprocessing metadata.
    Decoded folder images are cached in ``cache_dir`` (default: the user's cache folder,
    ``$RESNETV2_CACHE_DIR`` or ``$XDG_CACHE_HOME/resnetv2/images``), never in the data
    folder; ``cache: false`` turns the cache off. A run stores folder sources as absolute
    paths with a ``fingerprint`` (file count, hash of names and sizes) that ``--resume`` and
    ``evaluate RUN`` check (:mod:`resnetv2.data.fingerprint`); it is recomputed for new runs.
    ``flip: alternate`` mirrors each training image on alternate epochs instead of at random
    (airbench, arXiv:2404.00498; :mod:`resnetv2.data.augment`).
    """

    source: str = "digits"
    val_data: str | None = None
    val_split: float | None = None
    data_dir: str | None = None
    download: bool = False
    image_size: int | list[int] | None = None
    channels: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    #: ``auto`` or an augmentation preset (checked against the data layer's registry).
    augment: str = "auto"
    flip: Literal["random", "alternate"] = "random"
    batch_size: int = 128
    eval_batch_size: int | None = None
    workers: int = 0
    drop_last: bool = False
    cache: bool = True
    cache_dir: str | None = None
    fingerprint: dict[str, Any] | None = None


@dataclass
class OptimConfig:
    """Optimiser. Weight decay never applies to norm layers or biases (unless
    ``decay_norm_and_bias``); ``norm_bias_lr_scale`` multiplies their learning rate (airbench
    and Page's ResNet-9 train BatchNorm biases at 64× the lr; :mod:`resnetv2.engine.optim`).
    """

    #: An optimiser of the registry (checked against :data:`resnetv2.optimizers.OPTIMIZERS`).
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False
    decay_norm_and_bias: bool = False
    norm_bias_lr_scale: float = 1.0


@dataclass
class PlateauConfig:
    """Reduce the learning rate when a metric stops improving (Keras' ReduceLROnPlateau)."""

    monitor: Literal["val_loss", "val_acc"] = "val_loss"
    factor: float = 0.1
    patience: int = 10
    min_delta: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, evaluated at every optimiser step.

    ``multistep`` milestones are fractions of the run (He et al.: ``[0.5, 0.75]``, lr ÷10);
    ``warmup_epochs`` of ``linear`` warm-up ramp from ``warmup_lr`` to the base lr, while
    ``constant`` warm-up holds ``warmup_lr`` (He et al.'s 0.01 for ResNet-1001).
    ``onecycle`` ramps up over ``pct_start`` of the run and anneals to ``lr / final_div``.
    ``linear`` decays linearly from the base lr to ``min_lr`` (0) at the last step, after any
    warm-up (Li, Yumer & Ramanan 2020, "Budgeted Training").
    ``plateau`` (also usable with any name) multiplies the lr when a metric stalls.
    """

    #: A schedule of the registry (checked against :data:`resnetv2.lr_schedules.SCHEDULES`).
    name: str = "cosine"
    warmup_epochs: float = 0.0
    warmup: Literal["linear", "constant"] = "linear"
    warmup_lr: float | None = None
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1
    min_lr: float = 0.0
    pct_start: float = 0.25
    div_factor: float = 25.0
    final_div: float = 1e4
    anneal: Literal["cos", "linear"] = "cos"
    plateau: PlateauConfig | None = None


@dataclass
class EarlyStoppingConfig:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: Literal["val_loss", "val_acc"] = "val_acc"
    patience: int = 10
    min_delta: float = 0.0


@dataclass
class CallbacksConfig:
    """Optional callbacks; the CSV log, checkpoints and the NaN guard are always on."""

    early_stopping: EarlyStoppingConfig | None = None
    tensorboard: bool = False
    keep_checkpoints: int = 2


@dataclass
class TrainSection:
    """The loop: epochs, seed, loss, regularisation and device settings.

    ``amp: auto`` (bf16 autocast) is on for CUDA and for CPUs with AMX or AVX-512 BF16, off
    elsewhere (:mod:`resnetv2.engine.precision`); ``val_tta: flip`` validates each epoch on the
    image and its mirror (as ``evaluate --tta flip``; ``crop``/``flip-crop`` add translated
    views, :mod:`resnetv2.tta`); ``channels_last`` is on everywhere,
    since ``benchmarks/train_overhead.py --cpu-settings`` measured it faster on CPU as well
    (docs/bench-training.md).
    ``threads`` sets PyTorch's intra-op CPU threads for the run (``null``: PyTorch's default);
    small nets on a busy machine train far faster with 1 (docs/bench-training.md).
    ``checkpoint_activations`` (``null``: off) recomputes activations in backward to save
    memory (Chen et al. 2016): ``sqrt`` segments, ``unit`` (every residual unit, also ``-1``)
    or a segment count (:mod:`resnetv2.nn.recompute`).
    ``time`` (``--time``; ``90s``, ``10m``, ``1.5h`` or seconds) is a wall-clock budget for
    the whole run: the number of steps is planned from the measured speed and re-planned each
    epoch, the schedule ends annealed on time, and ``epochs`` becomes a cap
    (:mod:`resnetv2.engine.budget`). Validation stores it in seconds.
    ``tune`` times a few training steps before a CPU run to choose ``channels_last`` and
    ``threads`` where they are left open (``auto``: runs of 1,000+ steps or a 60 s+ budget;
    :mod:`resnetv2.engine.probe`).
    ``lookahead`` keeps slow weights that pull the model back every ``lookahead_steps`` steps
    by ``lookahead_alpha`` (Zhang et al. 2019; evaluated and saved like the EMA weights, and
    not combined with ``ema``). ``bn_momentum`` sets every BatchNorm's momentum (PyTorch's
    convention, the new batch's weight; ``null``: 0.1); airbench uses 0.4.
    ``memory_check`` refuses a run whose estimated memory exceeds the device's available
    memory before anything is allocated (:mod:`resnetv2.memory.preflight`).
    ``class_weights: balanced`` weights the training cross-entropy by inverse class frequency
    (``n / (classes × n_class)``) for unbalanced data.
    """

    epochs: int = 10
    time: float | str | None = None
    seed: int = 0
    deterministic: bool = False
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    ema: bool = False
    ema_decay: float = 0.999
    lookahead: bool = False
    lookahead_steps: int = 5
    lookahead_alpha: float = 0.5
    bn_momentum: float | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    amp: Literal["auto", "on", "off"] = "auto"
    val_tta: Literal["none", "flip", "crop", "flip-crop"] = "none"
    channels_last: Literal["auto", "on", "off"] = "auto"
    tune: Literal["auto", "on", "off"] = "auto"
    sync_bn: bool = False
    threads: int | None = None
    checkpoint_activations: int | str | None = None
    memory_check: bool = True
    class_weights: Literal["none", "balanced"] = "none"


@dataclass
class PlanSection:
    """Planning from the data (:mod:`resnetv2.engine.data_plan`, docs/training.md).

    For a folder source, ``auto`` chooses the input size and stem, batch size and lr, a
    validation split and fine-tuning learning rates from the images, with reasons in
    ``train.log``; the keys in ``keep`` (dotted, e.g. ``data.batch_size``) are never changed:
    the command line lists there every flag given, and with ``--config FILE`` every key the
    file sets. A run's saved config has ``auto: false``: its values are the plan's.
    """

    auto: bool = True
    keep: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    """A complete training configuration (one recipe, after overrides)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainSection = field(default_factory=TrainSection)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    plan: PlanSection = field(default_factory=PlanSection)
    name: str = "custom"
    description: str = ""

    def with_net(self, net: BudgetNet) -> TrainConfig:
        """This config training ``net`` (one of ``model.by_budget``), the list resolved."""
        model = dataclasses.replace(
            self.model, depth=net.depth, options=dict(net.options), preset=None, by_budget=[]
        )
        return dataclasses.replace(self, model=model)

    def build_spec(self, *, num_classes: int | None = None, in_channels: int | None = None):
        """The :class:`ResNetV2Spec` this config describes (data-derived fields filled in)."""
        from resnetv2.options import make_spec

        options = dict(self.model.options)
        if num_classes is not None:
            options.setdefault("num_classes", num_classes)
        if in_channels is not None:
            options.setdefault("in_channels", in_channels)
        base: str | int | None = self.model.preset
        if base is None:
            base = self.model.depth
        elif self.model.depth is not None:
            options["depth"] = self.model.depth
        if base is None and "units" not in options:
            raise ConfigError("model: give a preset, a depth or options.units")
        return make_spec(base, **options)


# --------------------------------------------------------------------------- validation
