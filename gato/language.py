"""Captioning, visual question answering and text completion with a trained Gato checkpoint.

CLI (`gato.cli` table)::

    gato caption IMAGE --checkpoint RUN
    gato caption --shots DIR IMAGE --checkpoint RUN     # few-shot: example pairs from DIR
    gato ask IMAGE "what color is the circle?" --checkpoint RUN
    gato ground IMAGE "red circle" --checkpoint RUN [--draw OUT.png]
    gato complete "Return the number of" --checkpoint RUN

Decoding is greedy, one token at a time through the model's KV cache (`GatoModel.decode`): the
prompt slots are decoded once, then each new token is appended as one slot; only text ids
``[0, 32000)`` are eligible, and ``</s>`` ends the text. Prompts follow the training layout of
`gato.multimodal`: a caption prompt is the image's 16 patches; a VQA prompt is the question
tokens then the patches; a completion prompt is the text's tokens.

Instruction-formatted checkpoints (`gato.multimodal.instruct_sources`) are prompted
``[instruction][patches]``: `caption_images` with ``instruct=True`` asks "what does the image
describe?"; `ground_phrases` asks 'which region does the text "<phrase>" describe?' and decodes
exactly 4 tokens restricted to the location ids into a box; `match_probabilities` compares the
next-token logits of "yes" and "no" after 'does the image describe "<caption>"?'. Few-shot
prompts (`few_shot_caption`, `rank_candidates`) are ``[patches][text </s>]`` pairs then the query
image's patches.

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
from gato.multimodal import (CAPTION_INSTRUCTION, FEW_SHOT_DOMAIN, INSTRUCTION_DOMAINS, few_shot_prompt,
                             grounding_instruction, matching_instruction, question_ids, vqa_slots)
from gato.tokenizer import (LOCATION_OFFSET, NUM_LOCATION_BINS, TEXT_EOS, TEXT_VOCAB, decode_box, decode_text,
                            encode_text)

if TYPE_CHECKING:
    from gato.checkpoint import LoadedCheckpoint

TEXT_DOMAINS = ("captioning", "vqa", "text")
LANGUAGE_DOMAINS = TEXT_DOMAINS + tuple(d for d in INSTRUCTION_DOMAINS if d not in TEXT_DOMAINS) + (FEW_SHOT_DOMAIN,)
"""Every domain whose targets are text (or, for grounding, location tokens)."""
LOCATION_RANGE = (LOCATION_OFFSET, LOCATION_OFFSET + NUM_LOCATION_BINS)


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
        factories = {"instruct_sources": list(INSTRUCTION_DOMAINS), "few_shot_sources": [FEW_SHOT_DOMAIN]}
        found = [d for s in specs if "multimodal" in str(s)
                 for d in factories.get(str(s).rsplit(":", 1)[-1], list(TEXT_DOMAINS))]
        return found or [f"data:{s}" for s in specs]
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
    if domains is not None and not set(domains) & set(LANGUAGE_DOMAINS):
        raise NoTextVocabulary(
            f"checkpoint {where} was trained on domains {sorted(domains)} without any text domain "
            f"{list(LANGUAGE_DOMAINS)}: it never learned its text vocabulary. Train with "
            f"`gato train --data ... gato.multimodal:vl_text_sources`")


def check_location_vocabulary(config, domains: list[str] | None, where: str) -> None:
    """Raise `NoTextVocabulary` unless the model embeds the location ids and learned grounding.

    A checkpoint of the 34,050-id vocabulary (before location tokens) has no location ids.
    """
    if config.vocab_size < LOCATION_RANGE[1]:
        raise NoTextVocabulary(
            f"checkpoint {where} has vocab_size={config.vocab_size}: it has no location tokens (ids "
            f"[{LOCATION_RANGE[0]}, {LOCATION_RANGE[1]}), docs/spec.md \"Token ids\"), so it cannot answer "
            f"with a box. Train a new model with `gato train --data gato.multimodal:instruct_sources ...`")
    if domains is not None and "grounding" not in domains:
        raise NoTextVocabulary(
            f"checkpoint {where} was trained on domains {sorted(domains)} without \"grounding\": it never "
            f"learned to answer with a box. Train with `gato train --data gato.multimodal:instruct_sources ...`")


def uses_instructions(domains: list[str] | None) -> bool:
    """Whether captions should be asked for with `CAPTION_INSTRUCTION`: the checkpoint learned
    "instruct-caption" but not the plain "captioning" layout."""
    return domains is not None and "instruct-caption" in domains and "captioning" not in domains


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
                    eos: int | None = TEXT_EOS,
                    vocab_range: tuple[int, int] = (0, TEXT_VOCAB)) -> list[np.ndarray]:
    """Greedy text continuation of each prompt with the KV cache.

    Args:
        model: a `GatoModel` (put in eval mode here).
        prompts: one run of slots per row (any lengths; each must leave room for one token).
        max_new_tokens: stop after this many tokens (also stops when the context is full).
        eos: the id that ends a row's text (not included in the output); None: none does.
        vocab_range: ``(lo, hi)``: only ids in ``[lo, hi)`` are eligible (text by default;
            `LOCATION_RANGE` for a box).

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
        next_tok = model.logits(hidden, vocab_range=vocab_range).argmax(-1) + vocab_range[0]  # (B,)
        for i in alive.nonzero().flatten().tolist():
            if eos is not None and int(next_tok[i]) == eos:
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


def instruction_prompt(image: np.ndarray, instruction: str) -> seq.SlotArrays:
    """Instruction tokens then patches, as in `gato.multimodal.InstructionSource`."""
    return vqa_slots(image, question_ids(instruction), None)


def caption_images(model, images: Sequence[np.ndarray], max_new_tokens: int = 40,
                   batch_size: int = 32, instruct: bool = False) -> list[str]:
    """Greedy captions of uint8 (H, W, 3) images (sides multiples of 16).

    ``instruct``: prompt with `CAPTION_INSTRUCTION` (a checkpoint of the "instruct-caption" task)."""
    out = []
    for chunk in batches(list(images), batch_size):
        prompts = [instruction_prompt(im, CAPTION_INSTRUCTION) if instruct else caption_prompt(im) for im in chunk]
        out += [decode_text(ids) for ids in greedy_generate(model, prompts, max_new_tokens)]
    return out


def ground_phrases(model, images: Sequence[np.ndarray], phrases: Sequence[str],
                   batch_size: int = 32) -> list[np.ndarray]:
    """The box each phrase describes in its image: float64 ``(x0, y0, x1, y1)`` pixels of the
    (square) model input, from 4 greedy tokens restricted to the location ids."""
    if len(images) != len(phrases):
        raise ValueError(f"{len(images)} images but {len(phrases)} phrases")
    prompts = [instruction_prompt(im, grounding_instruction(ph)) for im, ph in zip(images, phrases)]
    out = []
    for chunk, ims in zip(batches(prompts, batch_size), batches(list(images), batch_size)):
        for ids, im in zip(greedy_generate(model, chunk, 4, eos=None, vocab_range=LOCATION_RANGE), ims):
            if len(ids) != 4:
                raise ValueError(f"the context ended after {len(ids)} of the box's 4 tokens: shorten the phrase")
            out.append(decode_box(ids, width=im.shape[1], height=im.shape[0]))
    return out


@torch.inference_mode()
def next_token_logits(model, prompts: Sequence[seq.SlotArrays], ids: Sequence[int],
                      batch_size: int = 32) -> np.ndarray:
    """(N, len(ids)) logits of the given ids at the slot after each prompt."""
    model.eval()
    device = model.token_embedding.weight.device
    cols = torch.tensor(list(ids), device=device)
    out = []
    for chunk in batches(list(prompts), batch_size):
        for p in chunk:
            check_prompt_fits(len(p), model.config.max_len, "the prompt")
        b = seq.collate(chunk).to(device)
        last = torch.tensor([len(p) - 1 for p in chunk], device=device)
        hidden = model.hidden(b)[torch.arange(len(chunk), device=device), last]  # (n, D)
        out.append(model.logits(hidden)[:, cols].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(ids)), np.float32)


def match_probabilities(model, images: Sequence[np.ndarray], captions: Sequence[str],
                        batch_size: int = 32) -> np.ndarray:
    """P("yes") against "no" (a softmax over the two first-token logits) that each image fits
    its caption: (N,) float; above 0.5 means "the image describes it"."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    yes, no = (int(encode_text(w)[0]) for w in ("yes", "no"))
    prompts = [instruction_prompt(im, matching_instruction(c)) for im, c in zip(images, captions)]
    logits = next_token_logits(model, prompts, [yes, no], batch_size)
    return 1.0 / (1.0 + np.exp(logits[:, 1] - logits[:, 0]))


@torch.inference_mode()
def sequence_log_likelihoods(model, prompt: seq.SlotArrays, texts: Sequence[str]) -> np.ndarray:
    """Log-likelihood of each text (its pieces then ``</s>``) as the continuation of ``prompt``."""
    from gato.collate import segments_to_slots

    model.eval()
    device = model.token_embedding.weight.device
    rows = []
    for t in texts:
        cont = segments_to_slots([encode_text(t.strip(), eos=True)], domain=prompt.domain)
        full = seq.SlotArrays.concat([prompt, cont])
        full.is_target[:len(prompt)] = False
        check_prompt_fits(len(full) - 1, model.config.max_len, "the prompt with a candidate")
        rows.append(full)
    b = seq.collate(rows).to(device)
    mask = b.loss_mask  # the slots that predict a candidate's token
    logp = torch.log_softmax(model.logits(model.hidden(b)[mask]).float(), -1)  # (N targets, V)
    tok = logp.gather(-1, b.targets[mask][:, None])[:, 0]
    rows_of = mask.nonzero()[:, 0]
    return torch.zeros(len(rows), device=device).index_add_(0, rows_of, tok).cpu().numpy()


def rank_candidates(model, prompt: seq.SlotArrays, candidates: Sequence[str]) -> int:
    """Index of the most likely of ``candidates`` after ``prompt`` (closed-set answering)."""
    return int(np.argmax(sequence_log_likelihoods(model, prompt, candidates)))


def few_shot_caption(model, shots: Sequence[tuple[np.ndarray, str]], image: np.ndarray,
                     max_new_tokens: int = 16) -> str:
    """Greedy text of ``image`` after the interleaved ``(image, text)`` shots."""
    prompt = few_shot_prompt(shots, image)
    check_prompt_fits(len(prompt), model.config.max_len, f"{len(shots)} shots and the query image")
    return decode_text(greedy_generate(model, [prompt], max_new_tokens)[0])


def load_shots(folder: str | Path, image_size: int = 64) -> list[tuple[np.ndarray, str]]:
    """The example pairs of a folder: each image file (PNG/JPEG, by name order) with the text of
    the file of the same stem and suffix ``.txt`` beside it (`write_few_shot_episode`'s layout).

    Raises:
        FileNotFoundError: an image has no ``.txt`` beside it.
        ValueError: the folder holds no image, or a text file is empty.
    """
    folder = Path(folder)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not images:
        raise ValueError(f"--shots {str(folder)!r} holds no PNG or JPEG image (expected NAME.png with NAME.txt "
                         f"beside it)")
    out = []
    for p in images:
        txt = p.with_suffix(".txt")
        if not txt.is_file():
            raise FileNotFoundError(f"shot image {str(p)!r} has no text file {txt.name!r} beside it")
        text = txt.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"shot text {str(txt)!r} is empty")
        out.append((load_image(p, image_size), text))
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
    shots: str | None = None
    """a folder of example pairs (NAME.png with NAME.txt beside it) shown before the image, in
    name order: the model completes the image's text in their style (few-shot prompting)."""


@dataclass
class GroundConfig:
    """Find the region a phrase describes: `gato ground IMAGE "red circle" --checkpoint RUN`.

    Prints the box as ``x0 y0 x1 y1`` in the image file's pixels (ends exclusive)."""

    image: str
    """the image file (PNG/JPEG; center-cropped and resized to image_size for the model)."""
    phrase: str
    """the text whose region to find, e.g. "red circle"."""
    checkpoint: str
    """run directory (or checkpoint directory) of a model trained on grounding."""
    image_size: int = 64
    """image side in pixels (a multiple of 16; use the training size)."""
    draw: str | None = None
    """also write the image with the box drawn on it to this PNG file."""
    force: bool = False
    """replace an existing --draw file."""


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
    if cfg.shots is not None:
        check_dir(cfg.shots, "--shots", "folder of example pairs")
    image = load_image(cfg.image, cfg.image_size)  # raises on an unreadable image, before loading
    shots = load_shots(cfg.shots, cfg.image_size) if cfg.shots is not None else None
    loaded = load_text_model(cfg.checkpoint)
    model = loaded.model
    if shots is not None:
        print(few_shot_caption(model, shots, image, cfg.max_new_tokens))
        return 0
    instruct = uses_instructions(trained_domains(cfg.checkpoint, loaded))
    print(caption_images(model, [image], cfg.max_new_tokens, instruct=instruct)[0])
    return 0


def draw_box(image_path: str | Path, box: Sequence[float], out: str | Path) -> None:
    """Write the image file with ``box`` (its pixels, ends exclusive) outlined in white."""
    from PIL import Image, ImageDraw

    from envs.atomic import atomic_path

    with Image.open(image_path) as pil:
        rgb = pil.convert("RGB")
    width = max(1, round(min(rgb.size) / 64))
    x0, y0, x1, y1 = box
    ImageDraw.Draw(rgb).rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=(255, 255, 255), width=width)
    with atomic_path(Path(out)) as tmp:
        rgb.save(tmp, format="PNG")


def to_file_pixels(box: np.ndarray, image_path: str | Path, image_size: int) -> np.ndarray:
    """A box in the model input's pixels to the image file's (undoing `load_image`'s square
    center crop and resize)."""
    from PIL import Image

    with Image.open(image_path) as pil:
        w, h = pil.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    scale = side / image_size
    return np.asarray(box, np.float64) * scale + np.array([left, top, left, top], np.float64)


def ground_main(argv: list[str] | None = None) -> int:
    """`gato ground IMAGE "phrase" --checkpoint RUN [--draw OUT.png]`: print the phrase's box."""
    from envs.commandline import check_dir, check_file, check_out_files, parse

    cfg = parse(GroundConfig, argv, "gato ground", positional=("image", "phrase"))
    check_file(cfg.image, "IMAGE", "image file")
    check_dir(cfg.checkpoint, "--checkpoint", "run directory")
    if cfg.draw:
        check_out_files([cfg.draw], force=cfg.force, flag="--draw")
    image = load_image(cfg.image, cfg.image_size)
    loaded = load_text_model(cfg.checkpoint)
    model, config = loaded.model, loaded.config
    check_location_vocabulary(config, trained_domains(cfg.checkpoint, loaded), str(loaded.path))
    q, p = len(question_ids(grounding_instruction(cfg.phrase))), (image.shape[0] // 16) * (image.shape[1] // 16)
    check_prompt_fits(q + p + 3, config.max_len,  # room for the box's 4 tokens
                      f"the instruction ({q} tokens) with the image ({p} patches) and 3 of the box's 4 tokens")
    box = to_file_pixels(ground_phrases(model, [image], [cfg.phrase])[0], cfg.image, cfg.image_size)
    print(" ".join(f"{v:.1f}" for v in box))
    if cfg.draw:
        draw_box(cfg.image, box, cfg.draw)
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
