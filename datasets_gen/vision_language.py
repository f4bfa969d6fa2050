"""Synthetic vision-language data: Pillow scenes of coloured shapes, captions and questions.

No real photo-caption or VQA data ships in any package reachable offline, so the default
vision-language data is a scene generator whose captions and answers are computed from the
scene itself. A scene is a (64, 64, 3) image (16 patches of 16x16) holding 1–3 shapes on a
3x3 grid of cells (so positions are never ambiguous and shapes never overlap); each shape has
a kind (circle, square, triangle), a colour (red, green, blue, yellow, purple) and a size
(small, large).

Each scene carries:
- ``captions``: three reference captions (positions, plain listing, counted listing). The first
  is the canonical training target; all three are the references for BLEU-4 / CIDEr.
- ``questions``: question/answer pairs with exactly one correct answer. A question that names an
  object ("what color is the circle?") is only asked when the description picks out exactly one
  object of the scene (`unique_referent`); otherwise a longer description is tried, and the
  question is dropped if none is unique (e.g. two identical small red circles).

Scenes are a pure function of ``(split, index)`` (`make_scene`), so training can draw them on
the fly and evaluation uses a held-out split that shares no seed with training.

`write_dataset` writes scenes as PNG files plus COCO-captions and VQA JSON files, the formats that
`datasets_gen.coco` reads (the demo and users go through the same loaders as real COCO/VQAv2):

    python -m datasets_gen.vision_language --out data/vl-synthetic --num-scenes 200 --split val

Instruction tasks (docs/design.md "Instruction tasks and few-shot prompts") use three more things
a scene knows: every shape's pixel box (`SceneObject.box`, for visual grounding), the phrases
that pick out one shape (`referring_expressions`), and captions of a scene one change away
(`altered_objects`, `matching_pair`: the hard negatives of image-text matching).

Few-shot episodes (`few_shot_episode`) rename colours or shapes with made-up words that only
the episode's shots reveal; `--few-shot K` writes one as a folder for ``gato caption --shots``:

    python -m datasets_gen.vision_language --out /tmp/episode --split val --few-shot 4
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from datasets_gen.coco import CaptionExample, VQAExample, check_image_size, write_coco_captions, write_vqa
from envs.atomic import atomic_path, atomic_write_json

SHAPES = ("circle", "square", "triangle")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
}
SIZES = ("small", "large")
BACKGROUND = (24, 24, 24)
GRID = 3  # cells per side
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class SceneObject:
    """One shape of a scene.

    Attributes:
        shape: one of `SHAPES`.
        color: one of `COLORS`.
        size: one of `SIZES`.
        cell: (row, col) of the grid cell in [0, 3)^2; row 0 is the top.
        center: (x, y) pixel centre.
        radius: half the side of the shape's bounding box, in pixels.
    """

    shape: str
    color: str
    size: str
    cell: tuple[int, int]
    center: tuple[int, int]
    radius: int

    @property
    def position(self) -> str:
        """Where the object is, as a short answer: "top left", "top", "left", "center", ..."""
        row, col = ROWS[self.cell[0]], COLS[self.cell[1]]
        if row == "middle":
            return col
        return row if col == "center" else f"{row} {col}"

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Pixel bounding box ``(x0, y0, x1, y1)``, ends exclusive: `render` fills pixels of
        ``[x0, x1) x [y0, y1)`` only, and touches all four sides."""
        x, y, r = self.center[0], self.center[1], self.radius
        return (x - r, y - r, x + r + 1, y + r + 1)

    @property
    def position_phrase(self) -> str:
        """The position as a caption phrase: "at the top left", "on the right", "in the center"."""
        pos = self.position
        if pos == "center":
            return "in the center"
        if pos in ("left", "right"):
            return f"on the {pos}"
        return f"at the {pos}"


@dataclass
class QA:
    """One question with its single correct answer.

    Attributes:
        question: the question text, lower case, ending with "?".
        answer: the answer (one or two words; numbers as digits).
        kind: the template: "count", "count_color", "color", "shape", "size", "position", "exists".
    """

    question: str
    answer: str
    kind: str


@dataclass
class Scene:
    """A rendered scene with its captions and questions.

    Attributes:
        image: (S, S, 3) uint8.
        objects: the shapes, in raster order of their cells.
        captions: reference captions; ``captions[0]`` is the canonical one.
        questions: questions with exactly one answer.
        seed: the split and index the scene was drawn from.
    """

    image: np.ndarray
    objects: list[SceneObject]
    captions: list[str]
    questions: list[QA]
    seed: tuple[int, int] = (0, 0)


@dataclass
class SceneConfig:
    """How synthetic scenes are drawn."""

    image_size: int = 64
    """side of the square image in pixels (a multiple of 16; 64 gives 16 patches)."""
    min_objects: int = 1
    """fewest shapes in a scene."""
    max_objects: int = 3
    """most shapes in a scene (at most 9, one per grid cell)."""
    base_seed: int = 0
    """mixed into every scene's seed; change it for a different but still reproducible stream."""

    def __post_init__(self):
        check_image_size(self.image_size)
        if not 1 <= self.min_objects <= self.max_objects <= GRID * GRID:
            raise ValueError(f"need 1 <= min_objects ({self.min_objects}) <= max_objects "
                             f"({self.max_objects}) <= {GRID * GRID}")


# ----------------------------------------------------------------------------- referents

def matching(objects: list[SceneObject], *, shape: str | None = None, color: str | None = None,
             size: str | None = None) -> list[SceneObject]:
    """The objects that fit every given attribute."""
    return [o for o in objects
            if (shape is None or o.shape == shape) and (color is None or o.color == color)
            and (size is None or o.size == size)]


def unique_referent(objects: list[SceneObject], *, shape: str | None = None,
                    color: str | None = None, size: str | None = None) -> SceneObject | None:
    """The one object the description picks out, or None when it fits zero or several objects.

    Example:
        >>> a = SceneObject("circle", "red", "small", (0, 0), (10, 10), 5)
        >>> b = SceneObject("circle", "blue", "small", (0, 1), (32, 10), 5)
        >>> unique_referent([a, b], shape="circle") is None
        True
        >>> unique_referent([a, b], color="blue") == b
        True
    """
    found = matching(objects, shape=shape, color=color, size=size)
    return found[0] if len(found) == 1 else None


def describe(obj: SceneObject, objects: list[SceneObject], *, omit: str | None = None) -> str | None:
    """The shortest noun phrase that picks out ``obj`` alone, without using attribute ``omit``.

    Tries shape, colour, colour+shape, size+shape, size+colour+shape (in that order). Returns e.g.
    "circle", "red object", "small red circle", or None when no description is unique.
    """
    candidates = [
        {"shape": obj.shape},
        {"color": obj.color},
        {"color": obj.color, "shape": obj.shape},
        {"size": obj.size, "shape": obj.shape},
        {"size": obj.size, "color": obj.color, "shape": obj.shape},
    ]
    for attrs in candidates:
        if omit in attrs:
            continue
        if unique_referent(objects, **attrs) is obj:
            words = [attrs[k] for k in ("size", "color") if k in attrs]
            words.append(attrs.get("shape", "object"))
            return " ".join(words)
    return None


def referring_expressions(obj: SceneObject, objects: list[SceneObject]) -> list[str]:
    """Every noun phrase of `describe`'s forms that picks out ``obj`` alone, shortest first.

    The grounding task's phrases: "circle", "red object", "red circle", "small circle",
    "small red circle" (those that fit no other object of the scene). Empty when none is unique.

    Example:
        >>> a = SceneObject("circle", "red", "small", (0, 0), (10, 10), 5)
        >>> b = SceneObject("square", "red", "large", (0, 1), (32, 10), 9)
        >>> referring_expressions(a, [a, b])
        ['circle', 'red circle', 'small circle', 'small red circle']
    """
    out = []
    for attrs in ({"shape": obj.shape}, {"color": obj.color}, {"color": obj.color, "shape": obj.shape},
                  {"size": obj.size, "shape": obj.shape},
                  {"size": obj.size, "color": obj.color, "shape": obj.shape}):
        if unique_referent(objects, **attrs) is obj:
            words = [attrs[k] for k in ("size", "color") if k in attrs]
            out.append(" ".join(words + [attrs.get("shape", "object")]))
    return out


# ----------------------------------------------------------------------------- text

def _noun(obj: SceneObject) -> str:
    return f"{obj.size} {obj.color} {obj.shape}"


def _join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def captions_for(objects: list[SceneObject]) -> list[str]:
    """Three reference captions of a scene (deterministic; the first is the canonical one)."""
    with_pos = _join([f"a {_noun(o)} {o.position_phrase}" for o in objects])
    plain = _join([f"a {_noun(o)}" for o in objects])
    counted = _join([f"a {o.color} {o.shape}" for o in objects])
    n = len(objects)
    count = f"{NUMBER_WORDS[n]} shape" + ("s" if n > 1 else "")
    return [with_pos, f"there is {plain}", f"{count}: {counted}"]


def questions_for(objects: list[SceneObject], rng: np.random.Generator | None = None,
                  max_questions: int | None = None) -> list[QA]:
    """Questions about the scene that have exactly one correct answer.

    Every question naming an object uses a description that `unique_referent` resolves to that
    object. With ``rng`` the list is shuffled (and cut to ``max_questions``).
    """
    qs = [QA("how many shapes are there?", str(len(objects)), "count")]
    for color in sorted({o.color for o in objects}):
        qs.append(QA(f"how many {color} shapes are there?", str(len(matching(objects, color=color))),
                     "count_color"))
    for obj in objects:
        d = describe(obj, objects, omit="color")
        if d is not None:
            qs.append(QA(f"what color is the {d}?", obj.color, "color"))
        d = describe(obj, objects, omit="shape")
        if d is not None:
            qs.append(QA(f"what shape is the {d}?", obj.shape, "shape"))
        d = describe(obj, objects, omit="size")
        if d is not None:
            qs.append(QA(f"what size is the {d}?", obj.size, "size"))
        d = describe(obj, objects)
        if d is not None:
            qs.append(QA(f"where is the {d}?", obj.position, "position"))
    # One present and one absent colour+shape, so "yes" and "no" are both common answers.
    present = objects[0]
    qs.append(QA(f"is there a {present.color} {present.shape}?", "yes", "exists"))
    absent = [(c, s) for c in COLORS for s in SHAPES if not matching(objects, color=c, shape=s)]
    if absent:
        c, s = absent[0] if rng is None else absent[int(rng.integers(len(absent)))]
        qs.append(QA(f"is there a {c} {s}?", "no", "exists"))
    if rng is not None:
        qs = [qs[i] for i in rng.permutation(len(qs))]
    return qs[:max_questions] if max_questions else qs


def altered_objects(objects: list[SceneObject], rng: np.random.Generator,
                    image_size: int = 64) -> list[SceneObject]:
    """The scene with one object changed: its colour, its shape, or (when a cell is free) its cell.

    The image-text matching task's negatives are captions of such a scene: they read like any
    caption, so only the image tells them apart.
    """
    objects = list(objects)
    i = int(rng.integers(len(objects)))
    o = objects[i]
    free = sorted(set(range(GRID * GRID)) - {r * GRID + c for r, c in (x.cell for x in objects)})
    kinds = ["color", "shape"] + (["cell"] if free else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "color":
        others = [c for c in COLORS if c != o.color]
        new = replace(o, color=others[int(rng.integers(len(others)))])
    elif kind == "shape":
        others = [sh for sh in SHAPES if sh != o.shape]
        new = replace(o, shape=others[int(rng.integers(len(others)))])
    else:
        row, col = divmod(free[int(rng.integers(len(free)))], GRID)
        cell_px = image_size / GRID  # the same offset from the new cell's centre
        new = replace(o, cell=(row, col), center=(int(round(o.center[0] + (col - o.cell[1]) * cell_px)),
                                                  int(round(o.center[1] + (row - o.cell[0]) * cell_px))))
    objects[i] = new
    return sorted(objects, key=lambda x: x.cell)


MATCHING_KINDS = ("true", "other-scene", "one-change")
"""The kinds of image-text matching captions: a reference caption of the scene ("yes"), the
caption of another scene ("no") and the caption of the scene one change away ("no")."""


def matching_pair(scene: "Scene", rng: np.random.Generator) -> tuple[str, str, str]:
    """``(caption, "yes" or "no", kind)`` for image-text matching; ``kind`` is one of `MATCHING_KINDS`.

    Half the captions are true: one of the scene's reference captions. A quarter are the
    caption (same template) of another scene of the same split, a quarter that of
    `altered_objects` (a scene one attribute or one cell away), the hard negatives. A false
    caption is never one of the scene's own.
    """
    t = int(rng.integers(len(scene.captions)))
    if rng.random() < 0.5:
        return scene.captions[t], "yes", "true"
    size = scene.image.shape[0]
    if rng.random() < 0.5:
        split = next(name for name, code in SPLITS.items() if code == scene.seed[0])
        for _ in range(16):
            index = int(rng.integers(1_000_000))
            if index == scene.seed[1]:
                continue
            cap = make_scene(index, split, SceneConfig(image_size=size)).captions[t]
            if cap not in scene.captions:
                return cap, "no", "other-scene"
    for _ in range(8):
        cap = captions_for(altered_objects(scene.objects, rng, size))[t]
        if cap not in scene.captions:
            return cap, "no", "one-change"
    return captions_for(altered_objects(scene.objects, rng, size))[0], "no", "one-change"


# ----------------------------------------------------------------------------- drawing

def render(objects: list[SceneObject], image_size: int = 64) -> np.ndarray:
    """Draw the shapes on a dark background: (image_size, image_size, 3) uint8."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for o in objects:
        x, y, r = o.center[0], o.center[1], o.radius
        fill = COLORS[o.color]
        if o.shape == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif o.shape == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
        elif o.shape == "triangle":
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
        else:
            raise ValueError(f"unknown shape {o.shape!r}; expected one of {SHAPES}")
    return np.asarray(img, dtype=np.uint8).copy()


def scene_from_objects(objects: list[SceneObject], image_size: int = 64,
                       rng: np.random.Generator | None = None, seed: tuple[int, int] = (0, 0)) -> Scene:
    """Render given objects and compute their captions and questions."""
    objects = sorted(objects, key=lambda o: o.cell)
    return Scene(render(objects, image_size), objects, captions_for(objects),
                 questions_for(objects, rng), seed)


def make_scene(index: int, split: str = "train", cfg: SceneConfig | None = None) -> Scene:
    """Scene number ``index`` of ``split`` ("train", "val" or "test"): a pure function of its args."""
    cfg = cfg or SceneConfig()
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    rng = np.random.default_rng([cfg.base_seed, SPLITS[split], int(index)])
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    cells = rng.choice(GRID * GRID, size=n, replace=False)
    cell_px = cfg.image_size / GRID
    objects = []
    for c in sorted(int(c) for c in cells):
        row, col = divmod(c, GRID)
        size = SIZES[int(rng.integers(len(SIZES)))]
        # large fills ~85% of a cell, small ~45%; jitter keeps it inside its cell.
        radius = max(2, int(round(cell_px * (0.42 if size == "large" else 0.22))))
        slack = max(0, int(cell_px / 2 - radius - 1))
        cx = int(round((col + 0.5) * cell_px)) + int(rng.integers(-slack, slack + 1))
        cy = int(round((row + 0.5) * cell_px)) + int(rng.integers(-slack, slack + 1))
        objects.append(SceneObject(SHAPES[int(rng.integers(len(SHAPES)))],
                                   list(COLORS)[int(rng.integers(len(COLORS)))], size,
                                   (row, col), (cx, cy), radius))
    return scene_from_objects(objects, cfg.image_size, rng, (SPLITS[split], int(index)))


def caption_examples(scenes: list[Scene]) -> list[CaptionExample]:
    """Scenes as in-memory `CaptionExample`s (image ids = positions in the list)."""
    return [CaptionExample(i, list(s.captions), image=s.image) for i, s in enumerate(scenes)]


def vqa_examples(scenes: list[Scene], per_scene: int | None = None) -> list[VQAExample]:
    """Scenes' questions as in-memory `VQAExample`s, each with 10 identical human answers.

    Ten copies of the one correct answer make the VQAv2 consensus accuracy equal exact match.
    """
    out = []
    for i, s in enumerate(scenes):
        for j, qa in enumerate(s.questions[:per_scene] if per_scene else s.questions):
            out.append(VQAExample(i * 1000 + j, i, qa.question, [qa.answer] * 10, qa.answer,
                                  image=s.image))
    return out


# ----------------------------------------------------------------------------- few-shot episodes

FEW_SHOT_ATTRIBUTES = ("color", "shape")
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_REAL_WORDS = frozenset(SHAPES) | frozenset(COLORS) | frozenset(SIZES) | frozenset(NUMBER_WORDS) | {
    "bare", "base", "bide", "bike", "bore", "dame", "date", "dime", "dive", "dome", "done", "dose",
    "fade", "fake", "fame", "fare", "fate", "file", "fine", "fire", "fume", "fuse", "gale", "game",
    "gate", "kite", "lake", "lame", "lane", "late", "life", "like", "lime", "line", "live", "lobe",
    "make", "male", "mane", "mare", "mate", "mile", "mine", "mode", "mole", "more", "mule", "mute",
    "name", "node", "none", "nose", "note", "pale", "pane", "pike", "pile", "pine", "pipe", "pole",
    "pose", "rake", "rare", "rate", "ride", "rise", "robe", "role", "rope", "rose", "rude", "rule",
    "safe", "sake", "sale", "same", "side", "site", "size", "sole", "some", "sore", "sure", "take",
    "tale", "tame", "tide", "tile", "time", "tone", "tube", "tune", "vale", "vote", "wide", "zone",
    "data", "sofa", "tuna", "soda", "lava", "diva", "pita", "mama", "papa", "dada", "nana", "tofu",
    "menu", "tutu", "kilo", "memo", "solo", "polo", "logo", "demo", "veto", "typo", "taro", "kiwi",
}


@functools.lru_cache(maxsize=None)
def nonce_words(split: str) -> tuple[str, ...]:
    """Made-up names (consonant-vowel-consonant-vowel, e.g. "dafo", "kimu") of one split.

    The ~4,900 such words, less real English ones, are split by a hash of the word: half for
    "train", a quarter each for "val" and "test", so evaluation episodes use names that training
    never showed.
    """
    import hashlib

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    part = {"train": (0, 1), "val": (2,), "test": (3,)}[split]
    words = (a + b + c + d for a in _CONSONANTS for b in _VOWELS for c in _CONSONANTS for d in _VOWELS)
    return tuple(w for w in words if w not in _REAL_WORDS
                 and hashlib.sha1(w.encode()).digest()[0] % 4 in part)


@dataclass
class FewShotPair:
    """One image of a few-shot episode and its text.

    Attributes:
        image: (S, S, 3) uint8, one shape.
        obj: the shape.
        text: "<name> <shape>" when the episode renames colours ("dafo circle"), "<color> <name>"
            when it renames shapes ("red kimu").
    """

    image: np.ndarray
    obj: SceneObject
    text: str


@dataclass
class FewShotEpisode:
    """An N-way episode whose names exist only in it (Flamingo-style few-shot prompting).

    Attributes:
        attribute: "color" or "shape": the attribute the episode renames.
        names: real value -> the episode's made-up name (N entries).
        shots: the example pairs, in rounds: each round shows each of the N values once, in a
            random order, so any prefix of ``k * N`` shots is balanced.
        query: the image to complete; its value is one of the N.
        candidates: the query's text with each of the N names (the closed-set answers).
        answer: index of the query's true text in ``candidates``.
    """

    attribute: str
    names: dict[str, str]
    shots: list[FewShotPair]
    query: FewShotPair
    candidates: list[str]
    answer: int


def few_shot_text(obj: SceneObject, attribute: str, names: dict[str, str]) -> str:
    """The text of ``obj`` in an episode renaming ``attribute`` with ``names``."""
    if attribute == "color":
        return f"{names[obj.color]} {obj.shape}"
    if attribute == "shape":
        return f"{obj.color} {names[obj.shape]}"
    raise ValueError(f"unknown few-shot attribute {attribute!r}; expected one of {FEW_SHOT_ATTRIBUTES}")


def _one_object(rng: np.random.Generator, image_size: int, shape: str, color: str) -> SceneObject:
    cell_px = image_size / GRID
    row, col = (int(v) for v in rng.integers(GRID, size=2))
    size = SIZES[int(rng.integers(len(SIZES)))]
    radius = max(2, int(round(cell_px * (0.42 if size == "large" else 0.22))))
    slack = max(0, int(cell_px / 2 - radius - 1))
    cx = int(round((col + 0.5) * cell_px)) + int(rng.integers(-slack, slack + 1))
    cy = int(round((row + 0.5) * cell_px)) + int(rng.integers(-slack, slack + 1))
    return SceneObject(shape, color, size, (row, col), (cx, cy), radius)


def few_shot_episode(index: int, split: str = "train", shots: int = 8, ways: int = 2,
                     image_size: int = 64, base_seed: int = 0) -> FewShotEpisode:
    """Episode ``index`` of ``split``: a pure function of its arguments.

    The episode renames colours or shapes (even odds): it picks ``ways`` values of that attribute
    and gives each a made-up name of ``split`` (`nonce_words`). Every image holds one shape of
    one of those values; the other attribute, the size and the cell are random. Only the shots
    reveal which name goes with which value, so without shots the closed-set accuracy is
    chance, ``1 / ways``.
    """
    check_image_size(image_size)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if shots < 0:
        raise ValueError(f"shots={shots} must be >= 0")
    rng = np.random.default_rng([base_seed, 100 + SPLITS[split], int(index)])
    attribute = FEW_SHOT_ATTRIBUTES[int(rng.integers(len(FEW_SHOT_ATTRIBUTES)))]
    values = SHAPES if attribute == "shape" else tuple(COLORS)
    if not 2 <= ways <= len(values):
        raise ValueError(f"ways={ways} must be in [2, {len(values)}] (an episode may rename shapes)")
    chosen = [values[i] for i in rng.choice(len(values), size=ways, replace=False)]
    pool = nonce_words(split)
    names = dict(zip(chosen, (pool[i] for i in rng.choice(len(pool), size=ways, replace=False))))

    def pair(value: str) -> FewShotPair:
        if attribute == "color":
            shape, color = SHAPES[int(rng.integers(len(SHAPES)))], value
        else:
            shape, color = value, list(COLORS)[int(rng.integers(len(COLORS)))]
        o = _one_object(rng, image_size, shape, color)
        return FewShotPair(render([o], image_size), o, few_shot_text(o, attribute, names))

    order = [chosen[i] for r in range(-(-shots // ways)) for i in rng.permutation(ways)][:shots]
    shot_pairs = [pair(v) for v in order]
    value = chosen[int(rng.integers(ways))]
    query = pair(value)
    candidates = [few_shot_text(query.obj, attribute, {**names, value: names[v]}) for v in chosen]
    return FewShotEpisode(attribute, names, shot_pairs, query, candidates, chosen.index(value))


def write_few_shot_episode(episode: FewShotEpisode, out: str | Path) -> Path:
    """Write an episode as ``gato caption --shots`` reads it: ``out/shots/NNN.png`` with
    ``NNN.txt`` beside each, ``out/query.png`` and ``out/answer.txt`` (the query's text)."""
    from PIL import Image

    out = Path(out)
    (out / "shots").mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(episode.shots):
        with atomic_path(out / "shots" / f"{i:03d}.png") as tmp:
            Image.fromarray(p.image).save(tmp, format="PNG")
        (out / "shots" / f"{i:03d}.txt").write_text(p.text + "\n")
    with atomic_path(out / "query.png") as tmp:
        Image.fromarray(episode.query.image).save(tmp, format="PNG")
    (out / "answer.txt").write_text(episode.query.text + "\n")
    return out


# ----------------------------------------------------------------------------- on disk

@dataclass
class WriteConfig:
    """Write synthetic scenes to disk as PNG images + COCO-captions + VQA JSON files."""

    out: Path = Path("data/vl-synthetic")
    """output directory (images/, captions.json, vqa_questions.json, vqa_annotations.json)."""
    num_scenes: int = 200
    """how many scenes to write."""
    split: str = "val"
    """"train", "val" or "test": the seed stream the scenes come from."""
    scene: SceneConfig = field(default_factory=SceneConfig)
    """how scenes are drawn."""
    few_shot: int = 0
    """if > 0: write few-shot episode ``episode`` of ``split`` with this many shots instead
    (``gato caption --shots OUT/shots OUT/query.png``; `write_few_shot_episode`)."""
    episode: int = 0
    """which few-shot episode (with ``few_shot``)."""


def write_dataset(cfg: WriteConfig) -> Path:
    """Write scenes ``0..num_scenes-1`` of ``cfg.split`` in COCO/VQA formats; returns ``cfg.out``."""
    from PIL import Image

    out = Path(cfg.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    scenes = [make_scene(i, cfg.split, cfg.scene) for i in range(cfg.num_scenes)]
    file_names = {}
    for i, s in enumerate(scenes):
        name = f"synthetic_{cfg.split}_{i:012d}.png"
        with atomic_path(out / "images" / name) as tmp:
            Image.fromarray(s.image).save(tmp, format="PNG")
        file_names[i] = name
    write_coco_captions(caption_examples(scenes), out / "captions.json", file_names)
    write_vqa(vqa_examples(scenes), out / "vqa_questions.json", out / "vqa_annotations.json")
    atomic_write_json(out / "config.json", asdict(cfg), indent=2, default=str)
    return out


def main(argv: list[str] | None = None) -> int:
    import tyro

    cfg = tyro.cli(WriteConfig, args=argv)
    print(cfg)
    if cfg.few_shot > 0:
        ep = few_shot_episode(cfg.episode, cfg.split, cfg.few_shot, image_size=cfg.scene.image_size)
        out = write_few_shot_episode(ep, cfg.out)
        print(f"wrote a {cfg.few_shot}-shot episode renaming {ep.attribute}s ({ep.names}) to {out}")
        return 0
    out = write_dataset(cfg)
    print(f"wrote {cfg.num_scenes} scenes to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
