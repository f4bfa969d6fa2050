"""Loaders for the standard COCO-captions and VQA (v1/v2) JSON formats.

Users train on real COCO or VQAv2 from their own disk; nothing is downloaded. The synthetic
scenes of `datasets_gen.vision_language` are written in the same formats, so the one code path
below is exercised by the tests and by the demo.

COCO captions (``captions_train2014.json``)::

    {"images": [{"id": 9, "file_name": "COCO_train2014_000000000009.jpg", ...}],
     "annotations": [{"id": 48, "image_id": 9, "caption": "A plate of food."}, ...]}

VQA questions (``v2_OpenEnded_mscoco_train2014_questions.json``)::

    {"questions": [{"image_id": 9, "question": "What is on the plate?", "question_id": 90}]}

VQA annotations (``v2_mscoco_train2014_annotations.json``)::

    {"annotations": [{"question_id": 90, "image_id": 9, "multiple_choice_answer": "food",
                      "answers": [{"answer": "food", "answer_id": 1, ...}, ...10 answers]}]}

Images are looked up in ``image_dir``: by ``file_name`` when the captions file gives one, else by
the COCO naming convention (a file whose stem ends with the 12-digit zero-padded image id, e.g.
``COCO_val2014_000000000042.jpg``), else ``<image_id>.<ext>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envs.atomic import atomic_write_json
from envs.convention import PATCH_SIZE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclass
class CaptionExample:
    """One image with its reference captions.

    Attributes:
        image_id: the image's id in the annotation file (int for COCO, any for user data).
        captions: the human (or programmatic) reference captions, at least one.
        image_path: where the image is on disk; None when ``image`` holds the pixels.
        image: (H, W, 3) uint8 pixels already in memory (synthetic scenes); None when on disk.
    """

    image_id: int | str
    captions: list[str]
    image_path: Path | None = None
    image: np.ndarray | None = None

    def pixels(self, image_size: int = 64) -> np.ndarray:
        """The image as (image_size, image_size, 3) uint8, see `load_image`."""
        return _pixels(self.image, self.image_path, image_size)


@dataclass
class VQAExample:
    """One question about one image.

    Attributes:
        question_id: the question's id.
        image_id: the image's id.
        question: the question text.
        answers: the human answers (10 in VQAv2; the consensus accuracy uses all of them).
        multiple_choice_answer: the most common answer (the training target).
        image_path: where the image is on disk; None when ``image`` holds the pixels.
        image: (H, W, 3) uint8 pixels already in memory; None when on disk.
    """

    question_id: int | str
    image_id: int | str
    question: str
    answers: list[str] = field(default_factory=list)
    multiple_choice_answer: str = ""
    image_path: Path | None = None
    image: np.ndarray | None = None

    def pixels(self, image_size: int = 64) -> np.ndarray:
        """The image as (image_size, image_size, 3) uint8, see `load_image`."""
        return _pixels(self.image, self.image_path, image_size)


def _pixels(image: np.ndarray | None, path: Path | None, image_size: int) -> np.ndarray:
    if image is not None:
        if image.shape[:2] != (image_size, image_size):
            return resize_image(image, image_size)
        return image
    if path is None:
        raise ValueError("example has neither pixels nor an image_path")
    return load_image(path, image_size)


def check_image_size(image_size: int) -> None:
    """Raise unless ``image_size`` is a positive multiple of the 16-pixel patch."""
    if image_size <= 0 or image_size % PATCH_SIZE:
        raise ValueError(
            f"image_size={image_size} is not a positive multiple of {PATCH_SIZE}: Gato cuts images "
            f"into {PATCH_SIZE}x{PATCH_SIZE} patches; use e.g. 64 (16 patches) or 224 (196 patches)")


def resize_image(image: np.ndarray, image_size: int) -> np.ndarray:
    """Center-crop to a square, then resize to (image_size, image_size, 3) uint8 (bilinear)."""
    from PIL import Image

    check_image_size(image_size)
    pil = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    return _square_resize(pil, image_size)


def _square_resize(pil, image_size: int) -> np.ndarray:
    from PIL import Image

    w, h = pil.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    pil = pil.crop((left, top, left + side, top + side))
    if pil.size != (image_size, image_size):
        pil = pil.resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(pil, dtype=np.uint8).copy()  # (S, S, 3)


def load_image(path: str | Path, image_size: int = 64) -> np.ndarray:
    """Read an image file as (image_size, image_size, 3) uint8 RGB.

    The image is center-cropped to a square and resized, so that its sides are a multiple of the
    16-pixel patch (``image_size=64`` gives 16 patches).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable image, or ``image_size`` is not a multiple of 16.
    """
    from PIL import Image, UnidentifiedImageError

    check_image_size(image_size)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as pil:
            pil.load()
            rgb = pil.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(
            f"cannot read image {str(path)!r} ({type(err).__name__}: {err}); give a PNG or JPEG "
            f"file") from err
    return _square_resize(rgb, image_size)


def _read_json(path: str | Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} file {str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{what} file {str(path)!r} holds a {type(data).__name__}, expected an "
                         f"object with the standard keys")
    return data


def _require(data: dict, key: str, path: str | Path, what: str) -> list:
    if key not in data or not isinstance(data[key], list):
        raise ValueError(f"{what} file {str(path)!r} has no {key!r} list (keys: {sorted(data)}); is "
                         f"it the right file?")
    return data[key]


class ImageIndex:
    """Finds the image file of an image id inside one directory (indexed once)."""

    def __init__(self, image_dir: str | Path, file_names: dict | None = None):
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"image directory {str(self.image_dir)!r} does not exist")
        self.file_names = dict(file_names or {})
        self._by_stem: dict[str, Path] | None = None

    def _stems(self) -> dict[str, Path]:
        if self._by_stem is None:
            self._by_stem = {}
            for p in sorted(self.image_dir.iterdir()):
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    self._by_stem[p.stem] = p
                    # COCO names end with the 12-digit id: index the id too.
                    tail = p.stem.rsplit("_", 1)[-1]
                    if tail.isdigit():
                        self._by_stem.setdefault(f"#id{int(tail)}", p)
        return self._by_stem

    def path(self, image_id: int | str) -> Path:
        if image_id in self.file_names:
            return self.image_dir / self.file_names[image_id]
        stems = self._stems()
        if str(image_id) in stems:
            return stems[str(image_id)]
        if str(image_id).isdigit() and f"#id{int(image_id)}" in stems:
            return stems[f"#id{int(image_id)}"]
        coco_name = f"<prefix>_{int(image_id):012d}.jpg" if str(image_id).isdigit() else "-"
        raise FileNotFoundError(
            f"no image for image_id={image_id!r} in {str(self.image_dir)!r}: expected the file named "
            f"in the captions file, {coco_name!r} (COCO naming) or '{image_id}.jpg'/.png")


def load_coco_captions(annotations_json: str | Path, image_dir: str | Path) -> list[CaptionExample]:
    """Read a COCO-captions annotation file: one `CaptionExample` per image, in image-id order.

    Images without any caption are skipped. Image files are resolved now (a missing file raises)
    but read only when ``.pixels()`` is called.
    """
    data = _read_json(annotations_json, "COCO captions")
    anns = _require(data, "annotations", annotations_json, "COCO captions")
    images = data.get("images", [])
    file_names = {im["id"]: im["file_name"] for im in images if "file_name" in im}
    captions: dict = {}
    for a in anns:
        if "image_id" not in a or "caption" not in a:
            raise ValueError(f"COCO captions annotation {a!r} lacks 'image_id' or 'caption'")
        captions.setdefault(a["image_id"], []).append(str(a["caption"]).strip())
    index = ImageIndex(image_dir, file_names)
    order = sorted(captions, key=lambda i: (str(type(i)), i))
    return [CaptionExample(i, captions[i], image_path=index.path(i)) for i in order]


def load_vqa(questions_json: str | Path, annotations_json: str | Path | None,
             image_dir: str | Path) -> list[VQAExample]:
    """Read a VQA questions file (and its annotations file, if given): one `VQAExample` per question.

    Without annotations (a test split) the examples have no answers. Questions come in
    question-id order.
    """
    qdata = _read_json(questions_json, "VQA questions")
    questions = _require(qdata, "questions", questions_json, "VQA questions")
    answers: dict = {}
    if annotations_json is not None:
        adata = _read_json(annotations_json, "VQA annotations")
        for a in _require(adata, "annotations", annotations_json, "VQA annotations"):
            if "question_id" not in a:
                raise ValueError(f"VQA annotation {a!r} lacks 'question_id'")
            answers[a["question_id"]] = a
    index = ImageIndex(image_dir)
    out = []
    for q in sorted(questions, key=lambda q: (str(type(q.get("question_id"))), q.get("question_id"))):
        if "question" not in q or "image_id" not in q or "question_id" not in q:
            raise ValueError(f"VQA question {q!r} lacks 'question', 'image_id' or 'question_id'")
        ann = answers.get(q["question_id"])
        if annotations_json is not None and ann is None:
            raise ValueError(f"question_id={q['question_id']!r} has no annotation in "
                             f"{str(annotations_json)!r}: are the two files from the same split?")
        human = [str(a["answer"]) for a in ann.get("answers", [])] if ann else []
        mc = str(ann.get("multiple_choice_answer", human[0] if human else "")) if ann else ""
        out.append(VQAExample(q["question_id"], q["image_id"], str(q["question"]).strip(),
                              human or ([mc] if mc else []), mc, image_path=index.path(q["image_id"])))
    return out


def write_coco_captions(examples: list[CaptionExample], path: str | Path,
                        file_names: dict | None = None) -> None:
    """Write examples as a COCO-captions annotation file (atomically)."""
    images, anns = [], []
    for ex in examples:
        im = {"id": ex.image_id}
        if file_names and ex.image_id in file_names:
            im["file_name"] = file_names[ex.image_id]
        images.append(im)
        for c in ex.captions:
            anns.append({"id": len(anns), "image_id": ex.image_id, "caption": c})
    _write_json({"images": images, "annotations": anns}, path)


def write_vqa(examples: list[VQAExample], questions_path: str | Path,
              annotations_path: str | Path) -> None:
    """Write examples as a VQA questions file and a VQA annotations file (atomically)."""
    qs, anns = [], []
    for ex in examples:
        qs.append({"image_id": ex.image_id, "question": ex.question, "question_id": ex.question_id})
        human = ex.answers or [ex.multiple_choice_answer]
        anns.append({"question_id": ex.question_id, "image_id": ex.image_id,
                     "multiple_choice_answer": ex.multiple_choice_answer or human[0],
                     "answers": [{"answer": a, "answer_id": i + 1} for i, a in enumerate(human)]})
    _write_json({"questions": qs}, questions_path)
    _write_json({"annotations": anns}, annotations_path)


def _write_json(obj: dict, path: str | Path) -> None:
    atomic_write_json(path, obj, indent=None)
