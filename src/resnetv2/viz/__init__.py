"""Plots: training curves, confusion matrices, architecture diagrams, the mistakes grid and
class-activation-map overlays (matplotlib, Agg).

Nothing here calls ``pyplot.show()`` or needs a display; every function writes a file and
returns its path.
"""

from resnetv2.viz.architecture import architecture_boxes, plot_architecture
from resnetv2.viz.confusion import plot_confusion_matrix
from resnetv2.viz.curves import plot_curves

__all__ = ["architecture_boxes", "plot_architecture", "plot_confusion_matrix", "plot_curves"]
