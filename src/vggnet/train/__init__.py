"""Training: recipes as data, one loop, atomic checkpoints."""

from vggnet.runs import load_checkpoint, model_from_checkpoint, save_checkpoint
from vggnet.train.loop import TrainResult, resume, train
from vggnet.train.recipes import RECIPES, Recipe, get_recipe

__all__ = ["RECIPES", "Recipe", "TrainResult", "get_recipe", "load_checkpoint", "model_from_checkpoint",
           "resume", "save_checkpoint", "train"]
