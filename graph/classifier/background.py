"""Background requests: everyday messages that belong to no particular capability.

Guides only show what each capability wants; calibrating on them alone teaches the scorer
nothing about requests that fit none. These sentences (chit-chat, general knowledge, creative
and personal requests from no specific domain) are scored as negatives for every capability when
the head and the calibration are fitted, so a vague resemblance is not mistaken for confidence.
The registry's own out-of-scope examples (`classifier.out_of_scope_examples`) join them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graph.classifier.guides import LabelGuide
from graph.classifier.prototypes import GuideVectors

BACKGROUND_CLAIM_FLOOR = 0.5
"""A background request is an example of a capability only if at least this similar to one of them."""

BACKGROUND: tuple[str, ...] = (
    "hello there",
    "how are you doing today",
    "thanks a lot",
    "tell me a joke",
    "write me a poem about the sea",
    "what is the meaning of life",
    "who won the world cup in 1998",
    "what is the capital of australia",
    "recommend a good book",
    "sing me a song",
    "what's your favourite colour",
    "can you help me with something",
    "i am bored",
    "good night",
    "who are you",
    "what can you do",
    "tell me something interesting",
    "how do I make pancakes",
    "explain quantum physics simply",
    "what should I name my dog",
    "give me a motivational quote",
    "is the earth flat",
    "summarise the plot of hamlet",
    "what are the rules of chess",
    "write a short story about a dragon",
    "how tall is mount everest",
    "translate this sentence into spanish",
    "which movie should I watch tonight",
    "what's the best programming language",
    "help me plan a birthday party",
    "how do I get better at sleeping",
    "what is love",
    "describe the colour blue",
    "are you a robot",
    "let's play a game",
    "what do cats eat",
    "why is the sky blue",
    "tell me about the roman empire",
    "how do plants grow",
    "I need some advice about my career",
    "what rhymes with orange",
    "draw me a picture",
    "what's the weather like on mars",
    "teach me a magic trick",
    "who painted the mona lisa",
    "how many legs does a spider have",
    "okay",
    "never mind",
    "I have a question",
    "what is the airspeed of a swallow",
)


def given_out_of_scope(guides: Sequence[LabelGuide], out_of_scope: Sequence[str]) -> tuple[str, ...]:
    """`out_of_scope` without the texts a guide gives as its own (an example or its
    description): those stay positives, as in fine-tuning."""
    own = {t for g in guides for t in (*g.positives, g.description) if t}
    return tuple(t for t in dict.fromkeys(out_of_scope) if t not in own)


def every_background(given: tuple[str, ...]) -> tuple[str, ...]:
    """The given out-of-scope requests, then every built-in background request."""
    return (*given, *(t for t in BACKGROUND if t not in given))


def unclaimed_background(
    given: tuple[str, ...], guides: GuideVectors, background: np.ndarray
) -> tuple[str, ...]:
    """The given out-of-scope requests, then the background requests (embedded: `background`)
    that no guide claims. One as close to a capability's example as that capability's examples
    usually are to each other (the median nearest-sibling similarity) is an example of it ("thanks
    a lot" where there is a thank-you capability), and teaching the scorer that it fits nothing
    would contradict the guide."""
    nearest: list[np.ndarray] = []
    for i in range(len(guides.counts)):
        own = guides.positives[guides.positive_owner == i]
        if len(own) > 1:
            sims = own @ own.T
            np.fill_diagonal(sims, -np.inf)
            nearest.append(sims.max(1))
    # Never below BACKGROUND_CLAIM_FLOOR: guides whose examples barely resemble one another (or a
    # lexical encoder's low similarities) would otherwise disown most of the background.
    cutoff = max(float(np.median(np.concatenate(nearest))) if nearest else 0.9, BACKGROUND_CLAIM_FLOOR)
    closest = (background @ guides.positives.T).max(1)
    kept = (t for t, s in zip(BACKGROUND, closest, strict=True) if s < cutoff and t not in given)
    return (*given, *kept)
