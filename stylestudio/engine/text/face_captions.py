"""Captions for generated faces, written from the attribute predictors' labels in varied wordings.

The built-in encoder's image side (:mod:`.face_head`) learns only from these sentences, so this
table is exactly what it can know: age, gender, smile and a neutral face, surprise, mouth and eye
openness, head turn, hair and skin lightness. Nothing labels beards, glasses, hats, make-up or
hair length, so the encoder cannot know them. Each fact has several wordings; the last wording
of each (and two sentence templates) are never used in training, so the paraphrase test in
bench/face_text_encoder.py measures wordings the head has not seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fact:
    name: str
    group: str  #: facts of one group exclude each other (a face is young or old, not both)
    words: tuple[str, ...]  #: wordings; the last one is held out of training
    subject: bool = False  #: an adjective or noun of the subject ("an old woman"), not a trailing phrase

    def wordings(self, heldout: bool) -> tuple[str, ...]:
        return self.words[-1:] if heldout else self.words[:-1]


FACTS: dict[str, Fact] = {f.name: f for f in (
    Fact("young", "age", ("young", "youthful", "twenty-something"), subject=True),
    Fact("old", "age", ("old", "elderly", "senior"), subject=True),
    Fact("child", "age", ("child", "kid", "youngster"), subject=True),
    Fact("female", "gender", ("woman", "lady", "female person"), subject=True),
    Fact("male", "gender", ("man", "guy", "gentleman"), subject=True),
    Fact("smiling", "expression", ("smiling", "with a smile", "happy", "grinning")),
    Fact("neutral", "expression", ("with a neutral expression", "not smiling", "serious", "with a straight face")),
    Fact("surprised", "expression", ("surprised", "with a surprised look", "astonished")),
    Fact("mouth_open", "mouth", ("with an open mouth", "with the mouth open", "with parted lips")),
    Fact("mouth_closed", "mouth", ("with a closed mouth", "with the mouth shut", "with lips together")),
    Fact("eyes_narrow", "eyes", ("with narrowed eyes", "squinting", "with half-closed eyes")),
    Fact("eyes_wide", "eyes", ("with wide open eyes", "with big open eyes", "wide-eyed")),
    Fact("turned_right", "pose", ("with the head turned to the right", "facing right", "looking towards the right")),
    Fact("turned_left", "pose", ("with the head turned to the left", "facing left", "looking towards the left")),
    Fact("frontal", "pose", ("facing the camera", "looking straight ahead", "seen from the front")),
    Fact("light_hair", "hair", ("with blond hair", "with light hair", "fair-haired")),
    Fact("dark_hair", "hair", ("with dark hair", "with black hair", "dark-haired")),
    Fact("light_skin", "skin", ("with pale skin", "with fair skin", "light-skinned")),
    Fact("dark_skin", "skin", ("with dark skin", "with brown skin", "dark-skinned")),
)}

TEMPLATES = ("a photo of {}", "{}", "a portrait of {}", "a picture of {}", "a close-up photo of {}",
             "an image showing {}", "a headshot of {}")
HELDOUT_TEMPLATES = 2  #: the last two templates are held out
NOUN_NONE = ("person", "face", "human")  #: the subject when gender is not said (last held out)

#: label thresholds (predictor units: years, logits, degrees, ratios, CIE L*); between two
#: thresholds of a group a face gets no fact of that group (no caption is sure about it)
THRESHOLDS = {
    "child": ("age", "<", 10.0), "young": ("age", "<", 25.0), "old": ("age", ">", 45.0),
    "female": ("gender", ">", 1.5), "male": ("gender", "<", -1.5),
    "smiling": ("smile", ">", 1.0), "neutral": ("smile", "<", -2.0), "surprised": ("surprise", ">", 0.15),
    "turned_right": ("yaw", ">", 12.0), "turned_left": ("yaw", "<", -12.0), "frontal": ("abs_yaw", "<", 4.0),
}
#: facts set by the labels' own quantiles on the training faces (no absolute scale is meaningful)
QUANTILE_FACTS = {"mouth_open": ("mouth_open", ">", 0.85), "mouth_closed": ("mouth_open", "<", 0.35),
                  "eyes_narrow": ("eyes_open", "<", 0.12), "eyes_wide": ("eyes_open", ">", 0.88),
                  "light_hair": ("hair_lightness", ">", 0.8), "dark_hair": ("hair_lightness", "<", 0.3),
                  "light_skin": ("skin_tone", ">", 0.8), "dark_skin": ("skin_tone", "<", 0.12)}


def label_columns(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from ..attributes.networks import EMOTIONS

    cols = {k: np.asarray(v, np.float64) for k, v in data.items() if np.ndim(v) == 1}
    cols["abs_yaw"] = np.abs(cols["yaw"])
    if "emotion" in data:
        cols["surprise"] = np.asarray(data["emotion"])[:, EMOTIONS.index("surprise")]
    return cols


def fact_masks(data: dict[str, np.ndarray],
               cuts: dict[str, float] | None = None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Fact name → [N] bool, and the quantile cut values used (pass them back to label held-out faces the same way)."""
    cols = label_columns(data)
    if cuts is None:
        cuts = {f: float(np.nanquantile(cols[c], q)) for f, (c, _, q) in QUANTILE_FACTS.items()}
    out = {}
    for f, (c, op, t) in [*THRESHOLDS.items(), *[(f, (c, op, cuts[f])) for f, (c, op, _) in QUANTILE_FACTS.items()]]:
        v = cols[c]
        with np.errstate(invalid="ignore"):
            out[f] = np.isfinite(v) & ((v > t) if op == ">" else (v < t))
    out["young"] &= ~out["child"]
    return out, cuts


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def sentence(facts: list[str], rng: np.random.RandomState, heldout: bool = False) -> str:
    """One caption saying ``facts`` (a subset of one face's facts), in random wordings."""
    def pick(options):
        return options[rng.randint(len(options))]

    subj = [f for f in facts if FACTS[f].subject]
    rest = [f for f in facts if not FACTS[f].subject]
    gender = next((f for f in subj if FACTS[f].group == "gender"), None)
    age = next((f for f in subj if FACTS[f].group == "age"), None)
    if age == "child":
        noun = pick(FACTS["child"].wordings(heldout))
        adj = ""
    else:
        noun = pick(FACTS[gender].wordings(heldout)) if gender else pick(NOUN_NONE[-1:] if heldout else NOUN_NONE[:-1])
        adj = pick(FACTS[age].wordings(heldout)) if age else ""
    words = [pick(FACTS[f].wordings(heldout)) for f in rest]
    pre = [w for w in words if " " not in w]  # one word ("serious", "fair-haired") goes before the noun
    phrases = [w for w in words if " " in w]
    rng.shuffle(phrases)
    head = " ".join([*pre, adj, noun]).replace("  ", " ").strip()
    np_ = f"{_article(head)} {head}"
    if phrases:
        np_ += " " + (phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1])
    tpl = TEMPLATES[-HELDOUT_TEMPLATES:] if heldout else TEMPLATES[:-HELDOUT_TEMPLATES]
    return pick(tpl).format(np_)


def prompt(fact: str, heldout: bool = False) -> str:
    """The zero-shot prompt for one fact alone: "a photo of an old person" (first training wording),
    or with ``heldout`` the wording and template training never saw ("a headshot of a senior human")."""
    class First:  # picks the first option offered: the canonical wording
        @staticmethod
        def randint(n: int) -> int:
            return 0

        @staticmethod
        def shuffle(x: list) -> None:
            pass

    return sentence([fact], First(), heldout)  # type: ignore[arg-type]


def caption_table(data: dict[str, np.ndarray], per_face: int = 8, seed: int = 0, heldout_wordings: bool = False,
                  cuts: dict[str, float] | None = None) -> tuple[list[str], np.ndarray]:
    """(distinct captions, [N, per_face] indices into them) for labelled faces.

    Each caption says a random subset of the face's facts (each kept with probability ½, at
    least one), so short prompts ("an old person") are as familiar to the head as long ones."""
    masks, _ = fact_masks(data, cuts)
    names = list(masks)
    m = np.stack([masks[f] for f in names], 1)
    rng = np.random.RandomState(seed)
    index: dict[str, int] = {}
    caps = np.zeros((m.shape[0], per_face), np.int64)
    for i in range(m.shape[0]):
        have = [names[j] for j in np.flatnonzero(m[i])]
        for k in range(per_face):
            keep = [f for f in have if rng.rand() < 0.5]
            if not keep and have and rng.rand() < 0.8:
                keep = [have[rng.randint(len(have))]]
            text = sentence(keep, rng, heldout_wordings)
            caps[i, k] = index.setdefault(text, len(index))
    return list(index), caps
