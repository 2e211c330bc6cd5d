"""The paper's ablations as runnable studies (``vggnet experiment``)."""

from vggnet.experiments.studies import STUDIES, Arm, Study, get_study

__all__ = ["STUDIES", "Arm", "Study", "get_study"]
