"""The guard's constitutional classifier ring as a prompt judge, for requests without a label.

The rewards read a request's harmfulness from the dataset's ``label`` column; where there is
none they ask a :class:`~layerguard.train.reward_inputs.PromptJudge`. :class:`ClassifierPromptJudge`
is the one the project ships: the classifier ring of the guard, trained on the project's
training prompts or loaded from a folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError
from layerguard.train.reward_inputs import PromptInfo


class ClassifierPromptJudge:
    """The guard's constitutional classifier ring, used to say whether a request is harmful.

    The ring's calibrated verdict (``block`` or ``rewrite``) means harmful; its nearest hazard
    category is recorded (the self-harm rule reads it). Verdicts are cached per prompt text:
    TRL repeats each prompt once per generation.

    Args:
        ring: A :class:`layerguard.guard.rings.classifier.ClassifierRing`.
        threshold: Flag a prompt when its score is at or above this instead of using the
            ring's calibrated verdict. The guard's threshold is set for a 5% false-positive
            rate on borderline prompts too, so it misses many harmful ones; a reward can afford
            a lower threshold, because flagging a benign prompt only penalises a detailed answer
            to it.
    """

    def __init__(self, ring: Any, threshold: float | None = None) -> None:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise InvalidInputError(f"the prompt threshold must be in [0, 1], got {threshold}")
        self.ring = ring
        self.threshold = threshold
        self._cache: dict[str, PromptInfo] = {}

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, seed: int = 0, threshold: float | None = None
    ) -> ClassifierPromptJudge:
        """A judge from a trained classifier folder (or a guard folder holding ``classifier/``).

        With ``path=None`` a classifier is trained on the project's training prompts
        (``builtin:harmful:train`` vs ``builtin:harmless:train`` + ``builtin:borderline:train``)
        and the packaged constitution: about 10 s on a CPU, never on held-out data.

        Args:
            path: A classifier folder, a guard folder, or None to train one.
            seed: Seed of the classifier's cross-validated calibration.
            threshold: See the class.

        Raises:
            InvalidInputError: the folder holds no classifier.
        """
        from layerguard.guard.rings.classifier import ClassifierModel, ClassifierRing, Constitution, train_classifier

        constitution = Constitution.load(None)
        if path is None:
            from layerguard.data.builtin import load_builtin

            benign = load_builtin("harmless", "train") + load_builtin("borderline", "train")
            model = train_classifier(constitution, load_builtin("harmful", "train"), benign, seed=seed)
        else:
            p = Path(path)
            model = ClassifierModel.load(p / "classifier" if (p / "classifier" / "classifier.json").is_file() else p)
        return cls(ClassifierRing(model, constitution), threshold)

    def __call__(self, prompts: Sequence[str]) -> list[PromptInfo]:
        """One verdict per prompt (cached)."""
        from layerguard.guard.types import Exchange

        for p in dict.fromkeys(prompts):
            if p not in self._cache:
                v = self.ring.check(Exchange.from_prompt(p))
                flagged = v.decision != "allow" if self.threshold is None else v.score >= self.threshold
                self._cache[p] = PromptInfo(flagged, float(v.score), v.category, "classifier")
        return [self._cache[p] for p in prompts]
