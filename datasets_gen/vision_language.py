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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    out = write_dataset(cfg)
    print(f"wrote {cfg.num_scenes} scenes to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
