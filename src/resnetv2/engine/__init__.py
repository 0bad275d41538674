"""Training: the loop, optimisers, schedules, EMA, callbacks and data-parallel helpers.

>>> from resnetv2.config import load_recipe
>>> from resnetv2.engine import train
>>> result = train(load_recipe("digits"), out="runs/digits")   # doctest: +SKIP
"""

from resnetv2.engine.callbacks import NonFiniteLossError
from resnetv2.engine.data import DataError, load_training_data
from resnetv2.engine.ema import ModelEMA
from resnetv2.engine.optim import build_optimizer, param_groups
from resnetv2.engine.resume import ResumeMismatchError
from resnetv2.engine.runfolder import RunFolderError
from resnetv2.engine.schedules import ReduceOnPlateau, StepSchedule, build_lr_controller
from resnetv2.engine.trainer import Trainer, TrainingInterrupted, TrainResult, train

__all__ = [
    "DataError",
    "ModelEMA",
    "NonFiniteLossError",
    "ReduceOnPlateau",
    "ResumeMismatchError",
    "RunFolderError",
    "StepSchedule",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "build_lr_controller",
    "build_optimizer",
    "load_training_data",
    "param_groups",
    "train",
]
