"""Evaluation: metrics as mergeable counts, the evaluation loop, and run-folder reports.

* :mod:`~resnetv2.evaluation.metrics` — :class:`EvalAccumulator` (sums that ``all_reduce``)
  and :class:`EvalResult`;
* :mod:`~resnetv2.evaluation.loop` — :func:`evaluate` (model × data → :class:`EvalResult`);
* :mod:`~resnetv2.evaluation.run` — :func:`evaluate_run`, what ``resnetv2 evaluate RUN`` does;
* :mod:`~resnetv2.evaluation.mistakes` — the top confusions and the most confident mistakes;
* :mod:`~resnetv2.evaluation.cam` — class activation maps (CAM, Zhou et al. 2016; Grad-CAM,
  Selvaraju et al. 2017): where the model found the evidence for a class.
"""

from resnetv2.evaluation.loop import eval_mode, evaluate
from resnetv2.evaluation.metrics import (
    ClassMetrics,
    EvalAccumulator,
    EvalResult,
    EvaluationError,
    result_from_counts,
)

__all__ = [
    "ClassMetrics",
    "EvalAccumulator",
    "EvalResult",
    "EvaluationError",
    "evaluate",
    "eval_mode",
    "result_from_counts",
]
