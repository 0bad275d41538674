"""``from resnetv2.evaluate import evaluate, EvalAccumulator, EvalResult``.

The documented import path for evaluation; the code lives in :mod:`resnetv2.evaluation`.
"""

from resnetv2.evaluation import (
    ClassMetrics,
    EvalAccumulator,
    EvalResult,
    EvaluationError,
    eval_mode,
    evaluate,
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
