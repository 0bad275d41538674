"""Evaluation: metrics as mergeable counts, the evaluation loop, and run-folder reports.

* :mod:`~resnetv2.evaluation.metrics` — :class:`EvalAccumulator` (sums that ``all_reduce``)
  and :class:`EvalResult`;
* :mod:`~resnetv2.evaluation.loop` — :func:`evaluate` (model × data → :class:`EvalResult`);
* :mod:`~resnetv2.evaluation.run` — :func:`evaluate_run`, what ``resnetv2 evaluate RUN`` does.
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
