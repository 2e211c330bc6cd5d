"""Evaluation: scores, reports, evaluating a checkpoint, predicting image files."""

from vggnet.evaluate.metrics import Predictions, confusion_matrix, predict, score
from vggnet.evaluate.predict import predict_images
from vggnet.evaluate.run import evaluate_checkpoint

__all__ = ["Predictions", "confusion_matrix", "evaluate_checkpoint", "predict", "predict_images", "score"]
