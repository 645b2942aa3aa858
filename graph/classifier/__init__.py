"""The few-shot classifier: which capabilities a request needs, scored offline from the guides.

`build_scorer` makes the scorer a registry describes; `FewShotScorer` scores requests and fits
its curve and thresholds on labelled data; the encoders turn texts into vectors. Importing the
package loads no model: torch and the weights load on the first encoding.
"""

from graph.classifier.build import build_scorer, fingerprint
from graph.classifier.calibration import Calibration
from graph.classifier.encoders import (
    Encoder,
    HybridEncoder,
    LexicalEncoder,
    MiniLMEncoder,
    MPNetEncoder,
    make_encoder,
    trainable,
)
from graph.classifier.finetune import FineTune, finetune_key, worth_training
from graph.classifier.guides import LabelGuide, guides_from_registry
from graph.classifier.scorer import FewShotScorer, Score
from graph.classifier.thresholds import near_threshold

__all__ = [
    "Calibration",
    "Encoder",
    "FewShotScorer",
    "FineTune",
    "HybridEncoder",
    "LabelGuide",
    "LexicalEncoder",
    "MPNetEncoder",
    "MiniLMEncoder",
    "Score",
    "build_scorer",
    "finetune_key",
    "fingerprint",
    "guides_from_registry",
    "make_encoder",
    "near_threshold",
    "trainable",
    "worth_training",
]
