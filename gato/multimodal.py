"""Vision-language and text batch sources for the trainer's mixture.

Gato trains captioning, visual question answering and text in the same model and the same batches
as control (docs/spec.md "Sequence layout": up to 5 (image, caption) pairs per captioning
sequence; a text sequence is a plain run of text tokens). The sources below plug into `gato.data.Mixture`
(the `gato.data.BatchSource` protocol: ``domain`` and ``sample(batch_size, rng) -> list[SlotArrays]``)
and build their slots with `gato.sequence`'s vision-language helpers.

Caption sequence (domain ``"captioning"``), up to 5 pairs (`gato.sequence.image_text_sequence`)::

    [patch x 16][caption text ... </s>] [patch x 16][caption ...</s>] ...
     local 0..15  local -1, targets

VQA sequence (domain ``"vqa"``), up to 5 triples; question and image form the observation in
the spec's order (text, then patches), the answer is predicted::

    [question text][patch x 16][answer text ... </s>] ...
     local 0..q-1   local q..    local -1, targets

Text sequence (domain ``"text"``): a random window of the tokenized corpus (documents joined by
``</s>``), every next token a target (`gato.sequence.text_sequence`).

**Loss on text only**: ``loss_mask[i]`` is set when slot ``i + 1`` is a caption / answer token (or
any token of a text sequence); patches and question tokens are inputs only. The last patch of an
image predicts the caption's first token, and ``</s>`` (`gato.tokenizer.TEXT_EOS`) ends every
caption and answer so that greedy decoding knows when to stop (`gato.language`).

**[project choice]** VQA question tokens are not targets (only the answer is learned), and caption /
answer tokens carry local position -1 (`gato.sequence.segments_to_slots`'s choice for text
outside a control observation).

Sources (each has ``domain``, ``seq_len``, ``sample(batch_size, rng) -> list[SlotArrays]`` and
``batch(batch_size, rng) -> TokenBatch``):

- `CaptionSource` / `VQASource` over `datasets_gen.coco.CaptionExample` / `VQAExample` lists
  (real COCO/VQAv2 through `datasets_gen.coco`), or over synthetic scenes drawn on the fly
  (`synthetic_caption_source` / `synthetic_vqa_source`);
- `TextSource` over `datasets_gen.text_corpus` documents.

Instruction-formatted tasks (OFA; `InstructionSource`, domains `INSTRUCTION_DOMAINS`), each
example in the VQA layout ``[instruction][patch x 16][answer </s>]``:

- ``"instruct-caption"``: "what does the image describe?" -> the canonical caption;
- ``"vqa"``: the question itself (already an instruction) -> the answer;
- ``"matching"``: 'does the image describe "<caption>"?' -> "yes" / "no";
- ``"grounding"``: 'which region does the text "<phrase>" describe?' -> 4 location tokens
  ``x0 y0 x1 y1`` (`gato.tokenizer.encode_box`, ids ``[34050, 34178)``) then ``</s>``.

Few-shot sequences (Flamingo; `FewShotSource`, domain ``"few-shot"``): the interleaved
``[patch x 16][text </s>]`` pairs of one episode whose made-up names only its pairs reveal
(`datasets_gen.vision_language.few_shot_episode`).

`make_sources(MultimodalConfig)` builds them keyed by domain. Trainer factories (``gato train
--data gato.multimodal:vl_text_sources`` and per-domain weights ``captioning``/``vqa``/``text``):
`vl_text_sources`, `vl_sources`, `text_source`, `instruct_sources`, `few_shot_sources`.

Example:
    >>> import numpy as np
    >>> src = synthetic_caption_source(seq_len=64, num_scenes=10)
    >>> batch = src.batch(2, np.random.default_rng(0))
    >>> batch.tokens.shape, batch.domains
    (torch.Size([2, 64]), ['captioning', 'captioning'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from datasets_gen.coco import CaptionExample, VQAExample, check_image_size
from gato import sequence as seq
from gato.batch import TokenBatch
from gato.tokenizer import TEXT_EOS, encode_box, encode_text

MAX_PAIRS = 5  # docs/spec.md "Sequence layout": up to 5 (image, caption) pairs per sequence
ALL_DOMAINS = ("captioning", "vqa", "text", "instruct-caption", "matching", "grounding", "few-shot")
"""Every domain `make_sources` builds."""


# ----------------------------------------------------------------------------- sequences

def _num_patches(image: np.ndarray) -> int:
    return (image.shape[0] // 16) * (image.shape[1] // 16)


def caption_sequence(pairs: Sequence[tuple[np.ndarray, np.ndarray]], seq_len: int,
                     domain: str = "captioning") -> seq.SlotArrays:
    """Pack up to 5 (image, caption ids incl. ``</s>``) pairs, in order, while whole pairs fit.

    Raises:
        ValueError: if even the first pair does not fit (names the sizes and the fix).
    """
    pairs = list(pairs)[:MAX_PAIRS]
    if pairs:
        need = _num_patches(pairs[0][0]) + len(pairs[0][1])
        if need > seq_len:
            raise ValueError(
                f"one image-caption pair takes {need} slots ({_num_patches(pairs[0][0])} patches + "
                f"{len(pairs[0][1])} caption tokens) > seq_len={seq_len}: use a longer context, "
                f"smaller images or shorter captions")
    return seq.image_text_sequence(pairs, seq_len, domain=domain)


def vqa_slots(image: np.ndarray, q_ids: np.ndarray, a_ids: np.ndarray | None,
              domain: str = "vqa") -> seq.SlotArrays:
    """One VQA example as one segment: question (observation text, local 0..q-1, not a target),
    image patches (local q..q+P-1), then the answer ids (targets, local -1), if given."""
    q, p = len(q_ids), _num_patches(image)
    if q + p > seq.LOCAL_POSITIONS:
        raise ValueError(
            f"a question of {q} tokens with {p} image patches has {q + p} observation slots, more "
            f"than the {seq.LOCAL_POSITIONS} local positions: shorten the question or the image")
    parts = [np.asarray(q_ids, np.int64), image] + ([np.asarray(a_ids, np.int64)] if a_ids is not None else [])
    s = seq.segments_to_slots(parts, domain=domain)
    s.is_target[:q] = False
    s.local_positions[:q] = np.arange(q)
    s.local_positions[q:q + p] += q
    s.timestep_lengths = np.array([len(s)], np.int64)  # cut sequences only between examples
    return s


def vqa_sequence(triples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], seq_len: int,
                 domain: str = "vqa") -> seq.SlotArrays:
    """Pack up to 5 (image, question ids, answer ids incl. ``</s>``) triples while they fit.

    Raises:
        ValueError: if even the first triple does not fit.
    """
    out, used = [], 0
    for image, q_ids, a_ids in list(triples)[:MAX_PAIRS]:
        need = len(q_ids) + _num_patches(image) + len(a_ids)
        if used + need > seq_len:
            if not out:
                raise ValueError(
                    f"one VQA example takes {need} slots ({len(q_ids)} question tokens + "
                    f"{_num_patches(image)} patches + {len(a_ids)} answer tokens) > seq_len={seq_len}: "
                    f"use a longer context or a shorter question")
            break
        out.append(vqa_slots(image, q_ids, a_ids, domain))
        used += need
    return seq.SlotArrays.concat(out) if out else seq.SlotArrays.empty(domain)


# ----------------------------------------------------------------------------- text prompts

def caption_ids(caption: str) -> np.ndarray:
    """A caption's training ids: SentencePiece pieces then ``</s>``."""
    return encode_text(caption.strip(), eos=True)


def question_ids(question: str) -> np.ndarray:
    """A question's ids (observation text, no ``</s>``)."""
    return encode_text(question.strip())


def answer_ids(answer: str) -> np.ndarray:
    """An answer's training ids: pieces then ``</s>``."""
    return encode_text(answer.strip(), eos=True)


# ----------------------------------------------------------------------------- sources

class _Source:
    """What every source shares: ``sample`` builds ``batch_size`` sequences one by one
    (`_sequence`, which each source defines) and ``batch`` collates them.

    A subclass is a dataclass with ``seq_len`` and ``domain`` (a field or a property).
    """

    def _sequence(self, rng: np.random.Generator) -> seq.SlotArrays:
        """One sequence of at most ``seq_len`` slots (unpadded)."""
        raise NotImplementedError

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[seq.SlotArrays]:
        """``batch_size`` sequences of at most ``seq_len`` slots (unpadded)."""
        return [self._sequence(rng) for _ in range(batch_size)]

    def batch(self, batch_size: int, rng: np.random.Generator) -> TokenBatch:
        """``sample`` collated into a (batch_size, seq_len) `TokenBatch`."""
        return seq.collate(self.sample(batch_size, rng), self.seq_len)


class _PackedSource(_Source):
    """A source whose sequence packs ``max_pairs`` random examples (at most 5, fewer if they do
    not fit): each subclass says how it draws one (`_example`) and packs them (``_pack``:
    `caption_sequence` or `vqa_sequence`)."""

    def _example(self, rng: np.random.Generator) -> tuple:
        """One example, in the form ``_pack`` takes."""
        raise NotImplementedError

    def _sequence(self, rng: np.random.Generator) -> seq.SlotArrays:
        n = min(self.max_pairs, MAX_PAIRS)
        return self._pack([self._example(rng) for _ in range(n)], self.seq_len, self.domain)


@dataclass
class CaptionSource(_PackedSource):
    """Captioning sequences: up to 5 random (image, caption) pairs each.

    Attributes:
        examples: the pool, or a callable ``index -> CaptionExample`` (with ``num_examples``).
        seq_len: slots per sequence.
        image_size: images are resized to this square side (a multiple of 16).
        num_examples: pool size when ``examples`` is a callable.
        caption_choice: ``"random"`` trains on a random reference caption, ``"first"`` on the first.
        max_pairs: pairs per sequence (at most 5, fewer if they do not fit).
        domain: the name in ``TokenBatch.domains`` and in the trainer's per-domain weights.
    """

    examples: Sequence[CaptionExample] | Callable[[int], CaptionExample]
    seq_len: int
    image_size: int = 64
    num_examples: int | None = None
    caption_choice: str = "random"
    max_pairs: int = MAX_PAIRS
    domain: str = "captioning"

    _pack = staticmethod(caption_sequence)

    def __post_init__(self):
        check_image_size(self.image_size)
        _check_pool(self.examples, self.num_examples, "caption")
        if self.caption_choice not in ("random", "first"):
            raise ValueError(f"caption_choice={self.caption_choice!r}; expected 'random' or 'first'")

    def _example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        ex = _draw(self.examples, self.num_examples, rng)
        caps = ex.captions
        cap = caps[int(rng.integers(len(caps)))] if self.caption_choice == "random" else caps[0]
        return ex.pixels(self.image_size), caption_ids(cap)


@dataclass
class VQASource(_PackedSource):
    """VQA sequences: up to 5 random (question, image, answer) triples each.

    Attributes:
        examples: the pool, or a callable ``index -> VQAExample`` (with ``num_examples``).
        seq_len: slots per sequence.
        image_size: images are resized to this square side (a multiple of 16).
        num_examples: pool size when ``examples`` is a callable.
        max_pairs: triples per sequence (at most 5, fewer if they do not fit).
        domain: the name in ``TokenBatch.domains`` and in the trainer's per-domain weights.
    """

    examples: Sequence[VQAExample] | Callable[[int], VQAExample]
    seq_len: int
    image_size: int = 64
    num_examples: int | None = None
    max_pairs: int = MAX_PAIRS
    domain: str = "vqa"

    _pack = staticmethod(vqa_sequence)

    def __post_init__(self):
        check_image_size(self.image_size)
        _check_pool(self.examples, self.num_examples, "VQA")

    def _example(self, rng: np.random.Generator):
        ex = _draw(self.examples, self.num_examples, rng)
        answer = ex.multiple_choice_answer or ex.answers[0]
        return ex.pixels(self.image_size), question_ids(ex.question), answer_ids(answer)


def _check_pool(examples, num_examples, what: str) -> None:
    if callable(examples):
        if not num_examples or num_examples <= 0:
            raise ValueError(f"a {what} source drawing examples from a function needs num_examples > 0")
    elif len(examples) == 0:
        raise ValueError(f"the {what} source has no examples: check the annotation files")


def _draw(examples, num_examples, rng: np.random.Generator):
    if callable(examples):
        return examples(int(rng.integers(num_examples)))
    return examples[int(rng.integers(len(examples)))]


def token_stream(texts: Sequence[str]) -> np.ndarray:
    """Documents tokenized and joined, each followed by ``</s>``: (N,) int64."""
    parts = [encode_text(t, eos=True) for t in texts]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


@dataclass
class TextSource(_Source):
    """Text sequences: random windows of ``seq_len`` tokens of a token stream.

    Attributes:
        stream: (N,) int64 text ids (see `token_stream`); N must exceed ``seq_len``.
        seq_len: slots per sequence.
        domain: the name in ``TokenBatch.domains`` and in the trainer's per-domain weights.
    """

    stream: np.ndarray
    seq_len: int
    domain: str = "text"

    def __post_init__(self):
        if len(self.stream) <= self.seq_len:
            raise ValueError(f"text stream of {len(self.stream)} tokens is not longer than "
                             f"seq_len={self.seq_len}: give more text")

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[seq.SlotArrays]:
        """``batch_size`` random windows of ``seq_len`` text tokens (their starts drawn at once)."""
        starts = rng.integers(0, len(self.stream) - self.seq_len + 1, size=batch_size)
        return [seq.text_sequence(self.stream[s:s + self.seq_len], self.seq_len, domain=self.domain)
                for s in starts]


# ----------------------------------------------------------------------------- synthetic

def synthetic_caption_example(index: int, split: str = "train", image_size: int = 64) -> CaptionExample:
    """Synthetic scene ``index`` of ``split`` as a `CaptionExample`."""
    from datasets_gen.vision_language import SceneConfig, make_scene

    s = make_scene(index, split, SceneConfig(image_size=image_size))
    return CaptionExample(index, list(s.captions), image=s.image)


def synthetic_vqa_example(index: int, split: str = "train", image_size: int = 64) -> VQAExample:
    """A question of synthetic scene ``index // 32`` (question ``index % 32``, wrapping)."""
    from datasets_gen.vision_language import SceneConfig, make_scene

    s = make_scene(index // 32, split, SceneConfig(image_size=image_size))
    qa = s.questions[(index % 32) % len(s.questions)]
    return VQAExample(index, index // 32, qa.question, [qa.answer] * 10, qa.answer, image=s.image)


def synthetic_caption_source(seq_len: int, num_scenes: int = 5000, image_size: int = 64,
                             caption_choice: str = "first") -> CaptionSource:
    """Captioning over training scenes ``0..num_scenes-1`` (drawn on the fly, ~1 ms each)."""
    return CaptionSource(lambda i: synthetic_caption_example(i, "train", image_size), seq_len,
                         image_size, num_examples=num_scenes, caption_choice=caption_choice)


def synthetic_vqa_source(seq_len: int, num_scenes: int = 5000, image_size: int = 64) -> VQASource:
    """VQA over the questions of training scenes ``0..num_scenes-1``."""
    return VQASource(lambda i: synthetic_vqa_example(i, "train", image_size), seq_len, image_size,
                     num_examples=num_scenes * 32)


# ----------------------------------------------------------------------------- instruction tasks

CAPTION_INSTRUCTION = "what does the image describe?"
INSTRUCTION_DOMAINS = ("instruct-caption", "vqa", "matching", "grounding")
"""The instruction-formatted tasks (OFA): every one is ``[instruction][patches][answer </s>]``."""


def matching_instruction(caption: str) -> str:
    """The image-text matching instruction, answered "yes" or "no"."""
    return f'does the image describe "{caption.strip()}"?'


def grounding_instruction(phrase: str) -> str:
    """The visual grounding instruction, answered with the box's 4 location tokens."""
    return f'which region does the text "{phrase.strip()}" describe?'


def box_answer_ids(box, image_size: int) -> np.ndarray:
    """A grounding answer's training ids: the pixel box ``(x0, y0, x1, y1)`` of a square
    ``image_size`` image as 4 location ids, then ``</s>``."""
    return np.concatenate([encode_box(box, width=image_size, height=image_size), [TEXT_EOS]]).astype(np.int64)


def instruction_example(task: str, scene, rng: np.random.Generator) -> tuple[str, np.ndarray] | None:
    """``(instruction, answer ids incl. </s>)`` of ``task`` about a synthetic ``scene``.

    Tasks: ``"instruct-caption"`` (`CAPTION_INSTRUCTION`, the canonical caption), ``"vqa"`` (one
    of the scene's questions as it is: a question already is an instruction), ``"matching"``
    (`matching_instruction` of a reference caption, or of another scene's caption or of the
    scene's one change away, answered "yes"/"no" half the time each) and ``"grounding"`` (`grounding_instruction`
    of a phrase that picks out one shape, answered with its box). None when the scene has no
    such example (no question, or no shape that a phrase picks out alone).
    """
    from datasets_gen.vision_language import matching_pair, referring_expressions

    if task == "instruct-caption":
        return CAPTION_INSTRUCTION, caption_ids(scene.captions[0])
    if task == "vqa":
        if not scene.questions:
            return None
        qa = scene.questions[int(rng.integers(len(scene.questions)))]
        return qa.question, answer_ids(qa.answer)
    if task == "matching":
        caption, yes_no, _ = matching_pair(scene, rng)
        return matching_instruction(caption), answer_ids(yes_no)
    if task == "grounding":
        found = [(o, referring_expressions(o, scene.objects)) for o in scene.objects]
        found = [(o, ph) for o, ph in found if ph]
        if not found:
            return None
        o, phrases = found[int(rng.integers(len(found)))]
        return grounding_instruction(phrases[int(rng.integers(len(phrases)))]), box_answer_ids(o.box, scene.image.shape[0])
    raise ValueError(f"unknown instruction task {task!r}; expected one of {INSTRUCTION_DOMAINS}")


@dataclass
class InstructionSource(_PackedSource):
    """Instruction-formatted sequences of one task over synthetic scenes drawn on the fly.

    Each sequence packs up to 5 ``[instruction][16 patches][answer </s>]`` examples (the VQA
    layout of `vqa_slots`: the instruction is observation text, the answer is the target).

    Attributes:
        task: one of `INSTRUCTION_DOMAINS`; also the domain name.
        seq_len: slots per sequence.
        num_scenes: training scenes ``0..num_scenes-1`` of the "train" split.
        image_size: square image side (a multiple of 16).
        max_pairs: examples per sequence (at most 5, fewer if they do not fit).
    """

    task: str
    seq_len: int
    num_scenes: int = 5000
    image_size: int = 64
    max_pairs: int = MAX_PAIRS

    _pack = staticmethod(vqa_sequence)

    def __post_init__(self):
        check_image_size(self.image_size)
        if self.task not in INSTRUCTION_DOMAINS:
            raise ValueError(f"unknown instruction task {self.task!r}; expected one of {INSTRUCTION_DOMAINS}")
        if self.num_scenes <= 0:
            raise ValueError(f"num_scenes={self.num_scenes} must be > 0")

    @property
    def domain(self) -> str:
        return self.task

    def _example(self, rng: np.random.Generator):
        from datasets_gen.vision_language import SceneConfig, make_scene

        while True:
            scene = make_scene(int(rng.integers(self.num_scenes)), "train", SceneConfig(image_size=self.image_size))
            ex = instruction_example(self.task, scene, rng)
            if ex is not None:
                return scene.image, question_ids(ex[0]), ex[1]


# ----------------------------------------------------------------------------- few-shot prompts

FEW_SHOT_DOMAIN = "few-shot"


def few_shot_sequence(pairs: Sequence[tuple[np.ndarray, str]], seq_len: int,
                      domain: str = FEW_SHOT_DOMAIN) -> seq.SlotArrays:
    """Interleaved ``[patches][text </s>]`` pairs, in order, while whole pairs fit (no 5-pair
    cap: an 8-shot prompt and its query are 9 pairs)."""
    return seq.image_text_sequence([(im, caption_ids(t)) for im, t in pairs], seq_len, domain=domain)


def few_shot_prompt(shots: Sequence[tuple[np.ndarray, str]], query: np.ndarray,
                    domain: str = FEW_SHOT_DOMAIN) -> seq.SlotArrays:
    """The shots' pairs then the query image's patches: the model completes the query's text."""
    parts = [few_shot_sequence(shots, 10 ** 9, domain)] if shots else []
    parts.append(seq.segments_to_slots([query], domain=domain))
    return seq.SlotArrays.concat(parts)


@dataclass
class FewShotSource(_Source):
    """Few-shot sequences (Flamingo): the pairs of one episode each (`few_shot_episode`).

    An episode renames colours or shapes with made-up names of the "train" split; its pairs
    fill the sequence (up to ``max_shots`` shots and the query), every text a target, so each
    pair is a query whose shots are the pairs before it.

    Attributes:
        seq_len: slots per sequence.
        ways: values renamed per episode (chance is ``1 / ways``).
        max_shots: shots before the last pair (fewer if the sequence is full).
        image_size: square image side (a multiple of 16).
        domain: the name in ``TokenBatch.domains``.
    """

    seq_len: int
    ways: int = 2
    max_shots: int = 8
    image_size: int = 64
    domain: str = FEW_SHOT_DOMAIN

    def __post_init__(self):
        check_image_size(self.image_size)

    def _sequence(self, rng: np.random.Generator) -> seq.SlotArrays:
        """The pairs of one random episode."""
        from datasets_gen.vision_language import few_shot_episode

        ep = few_shot_episode(int(rng.integers(2 ** 62)), "train", self.max_shots, self.ways, self.image_size)
        return few_shot_sequence([(p.image, p.text) for p in ep.shots + [ep.query]], self.seq_len, self.domain)


# ----------------------------------------------------------------------------- config

@dataclass
class MultimodalConfig:
    """Which vision-language and text data to train on (the non-control part of the mixture)."""

    seq_len: int = 256
    """slots per sequence (the model's context, ``GatoConfig.max_len``)."""
    image_size: int = 64
    """square image side in pixels (a multiple of 16; 64 gives 16 patches)."""
    num_scenes: int = 5000
    """synthetic training scenes (used when no COCO/VQA files are given)."""
    coco_captions: str | None = None
    """a COCO-captions JSON file (e.g. captions_train2014.json); replaces the synthetic captions."""
    coco_images: str | None = None
    """the image directory of ``coco_captions`` / ``vqa_questions``."""
    vqa_questions: str | None = None
    """a VQA questions JSON file; replaces the synthetic questions."""
    vqa_annotations: str | None = None
    """the VQA annotations JSON file matching ``vqa_questions``."""
    text_source: str = "stdlib"
    """text corpus: "stdlib" (docstrings), "python-doc" (Debian python3.11-doc) or a directory."""
    text_max_units: int | None = None
    """read only this many corpus modules/files (None: all; ~340k tokens for "stdlib")."""
    caption_choice: str = "first"
    """"first": train on the canonical caption; "random": on a random reference."""
    domains: tuple[str, ...] = ("captioning", "vqa", "text")
    """which sources to build: any of `ALL_DOMAINS` ("instruct-caption", "matching", "grounding"
    and "few-shot" are synthetic only)."""
    few_shot_ways: int = 2
    """values an episode of the "few-shot" domain renames."""


def make_sources(cfg: MultimodalConfig) -> dict[str, object]:
    """The batch sources named in ``cfg.domains``, keyed by domain."""
    from datasets_gen.coco import load_coco_captions, load_vqa

    out: dict[str, object] = {}
    unknown = set(cfg.domains) - set(ALL_DOMAINS)
    if unknown:
        raise ValueError(f"unknown multimodal domains {sorted(unknown)}; expected some of {list(ALL_DOMAINS)}")
    if "captioning" in cfg.domains:
        if cfg.coco_captions:
            if not cfg.coco_images:
                raise ValueError("coco_captions needs coco_images (the image directory)")
            out["captioning"] = CaptionSource(load_coco_captions(cfg.coco_captions, cfg.coco_images),
                                              cfg.seq_len, cfg.image_size, caption_choice="random")
        else:
            out["captioning"] = synthetic_caption_source(cfg.seq_len, cfg.num_scenes, cfg.image_size,
                                                         cfg.caption_choice)
    if "vqa" in cfg.domains:
        if cfg.vqa_questions:
            if not cfg.coco_images:
                raise ValueError("vqa_questions needs coco_images (the image directory)")
            out["vqa"] = VQASource(load_vqa(cfg.vqa_questions, cfg.vqa_annotations, cfg.coco_images),
                                   cfg.seq_len, cfg.image_size)
        else:
            out["vqa"] = synthetic_vqa_source(cfg.seq_len, cfg.num_scenes, cfg.image_size)
    if "text" in cfg.domains:
        from datasets_gen.text_corpus import load_corpus

        corpus = load_corpus(cfg.text_source, max_units=cfg.text_max_units)
        out["text"] = TextSource(token_stream([d.text for d in corpus.train]), cfg.seq_len)
    for task in ("instruct-caption", "matching", "grounding"):
        if task in cfg.domains:
            out[task] = InstructionSource(task, cfg.seq_len, cfg.num_scenes, cfg.image_size)
    if FEW_SHOT_DOMAIN in cfg.domains:
        out[FEW_SHOT_DOMAIN] = FewShotSource(cfg.seq_len, cfg.few_shot_ways, image_size=cfg.image_size)
    return out


def vl_text_sources(sequence_length: int) -> list:
    """The trainer's ``--data gato.multimodal:vl_text_sources`` factory: synthetic captioning,
    synthetic VQA and stdlib text, with `MultimodalConfig` defaults at this sequence length."""
    return list(make_sources(MultimodalConfig(seq_len=sequence_length)).values())


def vl_sources(sequence_length: int) -> list:
    """``--data gato.multimodal:vl_sources``: synthetic captioning and VQA only."""
    return list(make_sources(MultimodalConfig(seq_len=sequence_length,
                                              domains=("captioning", "vqa"))).values())


def instruct_sources(sequence_length: int) -> list:
    """``--data gato.multimodal:instruct_sources``: the instruction-formatted tasks (OFA) over
    synthetic scenes: "instruct-caption", "vqa", "matching" and "grounding"."""
    return list(make_sources(MultimodalConfig(seq_len=sequence_length, domains=INSTRUCTION_DOMAINS)).values())


def few_shot_sources(sequence_length: int) -> list:
    """``--data gato.multimodal:few_shot_sources``: few-shot episodes (Flamingo), 2-way, up to 8
    shots (a sequence of 256 slots holds them all)."""
    return list(make_sources(MultimodalConfig(seq_len=sequence_length, domains=(FEW_SHOT_DOMAIN,))).values())


def text_source(sequence_length: int):
    """``--data gato.multimodal:text_source``: the stdlib text corpus only."""
    return make_sources(MultimodalConfig(seq_len=sequence_length, domains=("text",)))["text"]
