"""Captioning, visual question answering and text completion with a trained Gato checkpoint.

CLI (`gato.cli` table)::

    gato caption IMAGE --checkpoint RUN
    gato ask IMAGE "what color is the circle?" --checkpoint RUN
    gato complete "Return the number of" --checkpoint RUN

Decoding is greedy, one token at a time through the model's KV cache (`GatoModel.decode`): the
prompt slots are decoded once, then each new token is appended as one slot; only text ids
``[0, 32000)`` are eligible, and ``</s>`` ends the text. Prompts follow the training layout of
`gato.multimodal`: a caption prompt is the image's 16 patches; a VQA prompt is the question
tokens then the patches; a completion prompt is the text's tokens.

Their metrics (BLEU-4, CIDEr-D, VQA accuracy, perplexity) are `eval.language`.

Bad input raises: an unreadable image (`ValueError`/`FileNotFoundError` naming the file), a
prompt longer than the context (`ValueError` naming both lengths), a checkpoint without a text
vocabulary (`ValueError`: its embedding has fewer than 32,000 rows, or it was trained on no text
domain).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from datasets_gen.coco import load_image
from gato import sequence as seq
from gato.multimodal import question_ids, vqa_slots
from gato.tokenizer import TEXT_EOS, TEXT_VOCAB, decode_text, encode_text

if TYPE_CHECKING:
    from gato.checkpoint import LoadedCheckpoint

TEXT_DOMAINS = ("captioning", "vqa", "text")


# ----------------------------------------------------------------------------- checkpoints

class NoTextVocabulary(ValueError):
    """The checkpoint cannot produce text."""


def trained_domains(run_dir: str | Path, loaded: LoadedCheckpoint) -> list[str] | None:
    """The domains a checkpoint was trained on, from ``RUN/metrics.csv``'s ``loss/<domain>``
    columns (or the data specs of its train config); None when it cannot be told."""
    path = loaded.path
    for candidate in (Path(run_dir) / "metrics.csv", path.parent.parent / "metrics.csv"):
        if candidate.is_file():
            header = candidate.read_text().split("\n", 1)[0].split(",")
            return [c.split("/", 1)[1] for c in header if c.startswith("loss/")]
    train_config = loaded.train_config or {}
    specs = train_config.get("data")
    if specs:
        if any("multimodal" in str(s) for s in specs):
            return list(TEXT_DOMAINS)
        return [f"data:{s}" for s in specs]
    return None


def check_text_vocabulary(config, domains: list[str] | None, where: str) -> None:
    """Raise `NoTextVocabulary` unless the model embeds text ids and was trained on text.

    Args:
        config: the checkpoint's `GatoConfig`.
        domains: its trained domains (`trained_domains`), or None when unknown (accepted).
        where: the checkpoint path, for the message.
    """
    if config.vocab_size < TEXT_VOCAB:
        raise NoTextVocabulary(
            f"checkpoint {where} has vocab_size={config.vocab_size} < {TEXT_VOCAB}: it has no text "
            f"vocabulary (SentencePiece ids [0, {TEXT_VOCAB})); use a checkpoint trained with the "
            f"full Gato vocabulary")
    if domains is not None and not set(domains) & set(TEXT_DOMAINS):
        raise NoTextVocabulary(
            f"checkpoint {where} was trained on domains {sorted(domains)} without any text domain "
            f"{list(TEXT_DOMAINS)}: it never learned its text vocabulary. Train with "
            f"`gato train --data ... gato.multimodal:vl_text_sources`")


def load_text_model(run_dir: str | Path, device: str = "cpu") -> LoadedCheckpoint:
    """`gato.checkpoint.load` plus `check_text_vocabulary`."""
    from gato import checkpoint

    loaded = checkpoint.load(run_dir, device=device)
    check_text_vocabulary(loaded.config, trained_domains(run_dir, loaded), str(loaded.path))
    return loaded


# ----------------------------------------------------------------------------- decoding

class _StepSlots:
    """One text-token slot per row: the `SlotsLike` fields `GatoModel.embed` reads."""

    def __init__(self, tokens: torch.Tensor):
        b = tokens.shape[0]
        dev = tokens.device
        self.tokens = tokens.view(b, 1)
        self.is_patch = torch.zeros((b, 1), dtype=torch.bool, device=dev)
        self.patches = torch.zeros((0, 16 * 16 * 3), dtype=torch.float32, device=dev)
        self.patch_positions = torch.zeros((b, 1, 4), dtype=torch.long, device=dev)
        self.local_positions = torch.full((b, 1), -1, dtype=torch.long, device=dev)
        self.is_action = torch.zeros((b, 1), dtype=torch.bool, device=dev)


def check_prompt_fits(prompt_len: int, max_len: int, what: str) -> None:
    """Raise when a prompt leaves no room for one generated token in the context."""
    if prompt_len + 1 > max_len:
        raise ValueError(
            f"{what} takes {prompt_len} slots but the model's context is {max_len} slots (and at "
            f"least one more is needed for the answer): shorten it to at most {max_len - 1} slots")


@torch.inference_mode()
def greedy_generate(model, prompts: Sequence[seq.SlotArrays], max_new_tokens: int = 40,
                    eos: int = TEXT_EOS) -> list[np.ndarray]:
    """Greedy text continuation of each prompt with the KV cache.

    Args:
        model: a `GatoModel` (put in eval mode here).
        prompts: one run of slots per row (any lengths; each must leave room for one token).
        max_new_tokens: stop after this many tokens (also stops when the context is full).
        eos: the id that ends a row's text (not included in the output).

    Returns:
        Per prompt, the generated text ids (int64, possibly empty).
    """
    model.eval()
    max_len = model.config.max_len
    for i, p in enumerate(prompts):
        check_prompt_fits(len(p), max_len, f"prompt {i}")
    b = len(prompts)
    if b == 0:
        return []
    device = model.token_embedding.weight.device
    cache = model.new_cache(batch_size=b)
    last_hidden = []
    for i, p in enumerate(prompts):  # rows have different prompt lengths: prefill one by one
        batch = seq.collate([p]).to(device)
        hidden, cache = model.decode(batch, cache, rows=[i])
        last_hidden.append(hidden[0, -1])
    hidden = torch.stack(last_hidden)  # (B, D)
    out = [[] for _ in range(b)]
    alive = torch.ones(b, dtype=torch.bool, device=device)
    for _ in range(max_new_tokens):
        next_tok = model.logits(hidden, vocab_range=(0, TEXT_VOCAB)).argmax(-1)  # (B,)
        for i in alive.nonzero().flatten().tolist():
            if int(next_tok[i]) == eos:
                alive[i] = False
            else:
                out[i].append(int(next_tok[i]))
        alive &= cache.lengths < cache.capacity
        if not bool(alive.any()):
            break
        rows = alive.nonzero().flatten()
        h, cache = model.decode(_StepSlots(next_tok[rows]), cache, rows=rows)
        hidden = hidden.clone()
        hidden[rows] = h[:, -1]
    return [np.asarray(t, dtype=np.int64) for t in out]


def caption_prompt(image: np.ndarray) -> seq.SlotArrays:
    """The image's patches, as the caption sequences of `gato.multimodal` start."""
    return seq.segments_to_slots([image], domain="captioning")


def vqa_prompt(image: np.ndarray, question: str) -> seq.SlotArrays:
    """Question tokens then patches, as in `gato.multimodal.vqa_slots`."""
    return vqa_slots(image, question_ids(question), None)


def text_prompt(prompt: str) -> seq.SlotArrays:
    return seq.segments_to_slots([encode_text(prompt)], domain="text")


def batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def caption_images(model, images: Sequence[np.ndarray], max_new_tokens: int = 40,
                   batch_size: int = 32) -> list[str]:
    """Greedy captions of uint8 (H, W, 3) images (sides multiples of 16)."""
    out = []
    for chunk in batches(list(images), batch_size):
        out += [decode_text(ids) for ids in
                greedy_generate(model, [caption_prompt(im) for im in chunk], max_new_tokens)]
    return out


def answer_questions(model, images: Sequence[np.ndarray], questions: Sequence[str],
                     max_new_tokens: int = 8, batch_size: int = 32) -> list[str]:
    """Greedy answers to one question per image."""
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images but {len(questions)} questions")
    prompts = [vqa_prompt(im, q) for im, q in zip(images, questions)]
    out = []
    for chunk in batches(prompts, batch_size):
        out += [decode_text(ids) for ids in greedy_generate(model, chunk, max_new_tokens)]
    return out


def complete(model, prompt: str, max_new_tokens: int = 60) -> str:
    """Greedy continuation of a text prompt (the text that follows ``prompt``, spacing kept)."""
    ids = encode_text(prompt)
    new = greedy_generate(model, [text_prompt(prompt)], max_new_tokens)[0]
    # Decode prompt and continuation together: a piece's leading space is dropped at the start
    # of a decode, so decoding the continuation alone would glue it to the prompt's last word.
    return decode_text(np.concatenate([ids, new]))[len(decode_text(ids)):]


# ----------------------------------------------------------------------------- CLI

@dataclass
class CaptionConfig:
    """Caption an image with a trained checkpoint: `gato caption IMAGE --checkpoint RUN`."""

    image: str
    """the image file (PNG/JPEG; center-cropped and resized to image_size)."""
    checkpoint: str
    """run directory (or checkpoint directory)."""
    image_size: int = 64
    """image side in pixels (a multiple of 16; use the training size)."""
    max_new_tokens: int = 40
    """longest caption in tokens."""


@dataclass
class AskConfig:
    """Answer a question about an image: `gato ask IMAGE "QUESTION" --checkpoint RUN`."""

    image: str
    """the image file (PNG/JPEG)."""
    question: str
    """the question, e.g. "what color is the circle?"."""
    checkpoint: str
    """run directory (or checkpoint directory)."""
    image_size: int = 64
    """image side in pixels (a multiple of 16; use the training size)."""
    max_new_tokens: int = 8
    """longest answer in tokens."""


@dataclass
class CompleteConfig:
    """Complete a text prompt: `gato complete "PROMPT" --checkpoint RUN` (prints prompt + continuation)."""

    prompt: str
    """the text to continue."""
    checkpoint: str
    """run directory (or checkpoint directory)."""
    max_new_tokens: int = 60
    """how many tokens to add at most."""


def caption_main(argv: list[str] | None = None) -> int:
    """`gato caption IMAGE --checkpoint RUN`: print a greedy caption."""
    from envs.commandline import check_dir, check_file, parse

    cfg = parse(CaptionConfig, argv, "gato caption", positional=("image",))
    check_file(cfg.image, "IMAGE", "image file")
    check_dir(cfg.checkpoint, "--checkpoint", "run directory")
    image = load_image(cfg.image, cfg.image_size)  # raises on an unreadable image, before loading
    loaded = load_text_model(cfg.checkpoint)
    model = loaded.model
    print(caption_images(model, [image], cfg.max_new_tokens)[0])
    return 0


def ask_main(argv: list[str] | None = None) -> int:
    """`gato ask IMAGE "question" --checkpoint RUN`: print a greedy answer."""
    from envs.commandline import check_dir, check_file, parse

    cfg = parse(AskConfig, argv, "gato ask", positional=("image", "question"))
    check_file(cfg.image, "IMAGE", "image file")
    check_dir(cfg.checkpoint, "--checkpoint", "run directory")
    image = load_image(cfg.image, cfg.image_size)
    loaded = load_text_model(cfg.checkpoint)
    model, config = loaded.model, loaded.config
    q, p = len(question_ids(cfg.question)), (image.shape[0] // 16) * (image.shape[1] // 16)
    check_prompt_fits(q + p, config.max_len, f"the question ({q} tokens) with the image ({p} patches)")
    print(answer_questions(model, [image], [cfg.question], cfg.max_new_tokens)[0])
    return 0


def complete_main(argv: list[str] | None = None) -> int:
    """`gato complete "prompt" --checkpoint RUN`: print the prompt's greedy continuation."""
    from envs.commandline import check_dir, parse

    cfg = parse(CompleteConfig, argv, "gato complete", positional=("prompt",))
    check_dir(cfg.checkpoint, "--checkpoint", "run directory")
    loaded = load_text_model(cfg.checkpoint)
    model, config = loaded.model, loaded.config
    check_prompt_fits(len(text_prompt(cfg.prompt)), config.max_len, "the prompt")
    print(cfg.prompt + complete(model, cfg.prompt, cfg.max_new_tokens))
    return 0
