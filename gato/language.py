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

Evaluation (dicts for `eval.report.write_report(extra=..., extra_sections=...)`):

- `evaluate_captioning` -> ``{"bleu4", "cider", "captions", "samples"}`` on held-out scenes;
- `evaluate_vqa` -> ``{"vqa_accuracy", "vqa_exact_match", "vqa_questions", "samples"}``;
- `evaluate_perplexity` -> ``{"text_perplexity", "text_tokens"}`` on the held-out corpus split;
- `evaluate_language(model, LanguageEvalConfig)` runs the three, and `report_section(metrics)`
  formats them as a Markdown section; ``python -m gato.language --checkpoint RUN`` prints them.

Bad input raises: an unreadable image (`ValueError`/`FileNotFoundError` naming the file), a
prompt longer than the context (`ValueError` naming both lengths), a checkpoint without a text
vocabulary (`ValueError`: its embedding has fewer than 32,000 rows, or it was trained on no text
domain).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from datasets_gen.coco import CaptionExample, VQAExample, load_image
from gato import sequence as seq
from gato.multimodal import question_ids, vqa_slots
from gato.tokenizer import TEXT_EOS, TEXT_VOCAB, decode_text, encode_text

TEXT_DOMAINS = ("captioning", "vqa", "text")


# ----------------------------------------------------------------------------- checkpoints

class NoTextVocabulary(ValueError):
    """The checkpoint cannot produce text."""


def trained_domains(run_dir: str | Path, extra: dict) -> list[str] | None:
    """The domains a checkpoint was trained on, from ``RUN/metrics.csv``'s ``loss/<domain>``
    columns (or the data specs of its train config); None when it cannot be told."""
    path = Path(extra.get("path", run_dir))
    for candidate in (Path(run_dir) / "metrics.csv", path.parent.parent / "metrics.csv"):
        if candidate.is_file():
            header = candidate.read_text().split("\n", 1)[0].split(",")
            return [c.split("/", 1)[1] for c in header if c.startswith("loss/")]
    train_config = extra.get("train_config") or {}
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


def load_text_model(run_dir: str | Path, device: str = "cpu"):
    """`gato.checkpoint.load` plus `check_text_vocabulary`: returns ``(model, config, extra)``."""
    from gato import checkpoint

    model, config, extra = checkpoint.load(run_dir, device=device)
    check_text_vocabulary(config, trained_domains(run_dir, extra), str(extra.get("path", run_dir)))
    return model, config, extra


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


def _batched(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def caption_images(model, images: Sequence[np.ndarray], max_new_tokens: int = 40,
                   batch_size: int = 32) -> list[str]:
    """Greedy captions of uint8 (H, W, 3) images (sides multiples of 16)."""
    out = []
    for chunk in _batched(list(images), batch_size):
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
    for chunk in _batched(prompts, batch_size):
        out += [decode_text(ids) for ids in greedy_generate(model, chunk, max_new_tokens)]
    return out


def complete(model, prompt: str, max_new_tokens: int = 60) -> str:
    """Greedy continuation of a text prompt (the text that follows ``prompt``, spacing kept)."""
    ids = encode_text(prompt)
    new = greedy_generate(model, [text_prompt(prompt)], max_new_tokens)[0]
    # Decode prompt and continuation together: a piece's leading space is dropped at the start
    # of a decode, so decoding the continuation alone would glue it to the prompt's last word.
    return decode_text(np.concatenate([ids, new]))[len(decode_text(ids)):]


# ----------------------------------------------------------------------------- evaluation

def evaluate_captioning(model, examples: Sequence[CaptionExample], image_size: int = 64,
                        max_new_tokens: int = 40, num_samples: int = 3) -> dict:
    """Corpus BLEU-4 and CIDEr-D of greedy captions against every reference caption."""
    from eval.language_metrics import caption_scores

    images = [ex.pixels(image_size) for ex in examples]
    preds = caption_images(model, images, max_new_tokens)
    refs = [list(ex.captions) for ex in examples]
    out = caption_scores(preds, refs)
    out["samples"] = [{"prediction": p, "reference": r[0]} for p, r in zip(preds, refs)][:num_samples]
    return out


def question_type(question: str) -> str:
    """A question's first two words, lower case ("what color", "how many", "is there", ...)."""
    return " ".join(question.lower().split()[:2])


def evaluate_vqa(model, examples: Sequence[VQAExample], image_size: int = 64,
                 max_new_tokens: int = 8, num_samples: int = 3) -> dict:
    """VQA consensus accuracy and exact match of greedy answers."""
    from eval.language_metrics import vqa_accuracy, vqa_scores

    images = [ex.pixels(image_size) for ex in examples]
    preds = answer_questions(model, images, [ex.question for ex in examples], max_new_tokens)
    out = vqa_scores(preds, [list(ex.answers) for ex in examples],
                     [ex.multiple_choice_answer for ex in examples])
    by_type: dict[str, list[float]] = {}
    for ex, p in zip(examples, preds):
        by_type.setdefault(question_type(ex.question), []).append(vqa_accuracy(p, list(ex.answers)))
    out["by_question_type"] = {k: {"accuracy": sum(v) / len(v), "n": len(v)} for k, v in sorted(by_type.items())}
    out["samples"] = [{"question": ex.question, "prediction": p, "answer": ex.multiple_choice_answer}
                      for ex, p in zip(examples, preds)][:num_samples]
    return out


@torch.inference_mode()
def evaluate_perplexity(model, texts: Sequence[str], seq_len: int | None = None,
                        batch_size: int = 8, max_tokens: int | None = 50_000) -> dict:
    """Perplexity per SentencePiece token on ``texts`` (documents joined by ``</s>``).

    The stream is cut into non-overlapping windows of ``seq_len`` tokens; within a window every
    token after the first is predicted (`gato.multimodal.text_sequence` layout).
    """
    from eval.language_metrics import perplexity
    from gato.multimodal import token_stream

    model.eval()
    seq_len = seq_len or model.config.max_len
    stream = token_stream(list(texts))
    if max_tokens:
        stream = stream[:max_tokens]
    windows = [stream[i:i + seq_len] for i in range(0, len(stream) - 1, seq_len)]
    windows = [w for w in windows if len(w) > 1]
    if not windows:
        raise ValueError("no held-out text to measure perplexity on")
    device = model.token_embedding.weight.device
    nll, count = 0.0, 0
    for chunk in _batched(windows, batch_size):
        batch = seq.collate([seq.text_sequence(w, seq_len, domain="text") for w in chunk], seq_len)
        _, metrics = model(batch.to(device))
        nll += float(metrics["loss_sum/text"])
        count += int(metrics["targets/text"])
    return {"text_perplexity": perplexity(nll, count), "text_tokens": float(count)}


@dataclass
class LanguageEvalConfig:
    """Evaluate a checkpoint on captioning, VQA and held-out text."""

    checkpoint: str = ""
    """run directory (or checkpoint directory) to evaluate."""
    num_scenes: int = 50
    """held-out synthetic scenes ("val" split) for captioning and VQA."""
    questions_per_scene: int = 2
    """VQA questions per held-out scene."""
    image_size: int = 64
    """image side (must match training)."""
    coco_captions: str | None = None
    """evaluate captioning on this COCO-captions file instead (with coco_images)."""
    vqa_questions: str | None = None
    """evaluate VQA on this VQA questions file instead (with vqa_annotations, coco_images)."""
    vqa_annotations: str | None = None
    """the VQA annotations file."""
    coco_images: str | None = None
    """image directory of the COCO/VQA files."""
    max_examples: int = 200
    """at most this many COCO/VQA examples."""
    text_source: str = "stdlib"
    """text corpus whose held-out split gives perplexity ("stdlib", "python-doc", a directory)."""
    text_max_tokens: int = 20_000
    """held-out tokens scored for perplexity."""
    domains: tuple[str, ...] = TEXT_DOMAINS
    """which of captioning, vqa, text to evaluate."""
    blind_baselines: bool = True
    """also score image-blind baselines on the synthetic scenes (`blind_baselines`, ~2 s)."""
    out: str | None = None
    """write the metrics JSON here too."""


def evaluate_language(model, cfg: LanguageEvalConfig) -> dict:
    """Captioning, VQA and perplexity metrics in one flat-ish dict (see the module docstring)."""
    from datasets_gen.coco import load_coco_captions, load_vqa
    from datasets_gen.vision_language import SceneConfig, caption_examples, make_scene, vqa_examples

    out: dict = {}
    t0 = time.perf_counter()
    scenes = None
    if ("captioning" in cfg.domains or "vqa" in cfg.domains) and not (cfg.coco_captions and cfg.vqa_questions):
        scenes = [make_scene(i, "val", SceneConfig(image_size=cfg.image_size)) for i in range(cfg.num_scenes)]
    if "captioning" in cfg.domains:
        exs = (load_coco_captions(cfg.coco_captions, cfg.coco_images)[:cfg.max_examples]
               if cfg.coco_captions else caption_examples(scenes))
        out["captioning"] = evaluate_captioning(model, exs, cfg.image_size)
    if "vqa" in cfg.domains:
        exs = (load_vqa(cfg.vqa_questions, cfg.vqa_annotations, cfg.coco_images)[:cfg.max_examples]
               if cfg.vqa_questions else vqa_examples(scenes, cfg.questions_per_scene))
        out["vqa"] = evaluate_vqa(model, exs, cfg.image_size)
    if "text" in cfg.domains:
        from datasets_gen.text_corpus import load_corpus

        corpus = load_corpus(cfg.text_source)
        out["text"] = evaluate_perplexity(model, [d.text for d in corpus.held_out],
                                          max_tokens=cfg.text_max_tokens)
        out["text"]["source"] = cfg.text_source
    if cfg.blind_baselines and scenes is not None:
        out["blind"] = blind_baselines(cfg.num_scenes, cfg.questions_per_scene, cfg.image_size)
    out["eval_seconds"] = time.perf_counter() - t0
    return out


def blind_baselines(num_scenes: int = 50, questions_per_scene: int = 2, image_size: int = 64,
                    train_scenes: int = 2000) -> dict:
    """What the synthetic tasks give without looking at the image, for context in reports.

    - captioning: each held-out scene gets the canonical caption of a random training scene;
    - VQA: each question gets the most common training answer of its question type (its first
      two words: "what color", "how many", "is there", ...).

    Returns:
        ``{"captioning": {"bleu4", "cider", ...}, "vqa": {"vqa_accuracy", ...}}`` on the same
        held-out scenes and questions as `evaluate_language`'s synthetic default.
    """
    from collections import Counter

    from datasets_gen.vision_language import SceneConfig, make_scene, vqa_examples
    from eval.language_metrics import caption_scores, vqa_scores

    scfg = SceneConfig(image_size=image_size)
    train = [make_scene(i, "train", scfg) for i in range(train_scenes)]
    val = [make_scene(i, "val", scfg) for i in range(num_scenes)]
    rng = np.random.default_rng(0)
    random_caps = [train[int(rng.integers(len(train)))].captions[0] for _ in val]
    qtype = question_type
    counts: dict[str, Counter] = {}
    for s in train:
        for qa in s.questions:
            counts.setdefault(qtype(qa.question), Counter())[qa.answer] += 1
    exs = vqa_examples(val, questions_per_scene)
    preds = [counts[qtype(ex.question)].most_common(1)[0][0] if qtype(ex.question) in counts else ""
             for ex in exs]
    return {"captioning": caption_scores(random_caps, [s.captions for s in val]),
            "vqa": vqa_scores(preds, [ex.answers for ex in exs],
                              [ex.multiple_choice_answer for ex in exs])}


def report_section(metrics: dict) -> tuple[str, str]:
    """``(title, Markdown)`` for `eval.report.write_report(extra_sections=[...])`."""
    blind = metrics.get("blind", {})
    rows = ["| task | metric | Gato | image-blind baseline | n |", "| --- | --- | --- | --- | --- |"]
    if "captioning" in metrics:
        c, b = metrics["captioning"], blind.get("captioning", {})
        for key, name in (("bleu4", "BLEU-4"), ("cider", "CIDEr-D")):
            base = f"{b[key]:.3f}" if key in b else "-"
            rows.append(f"| captioning (held-out) | {name} | {c[key]:.3f} | {base} | {int(c['captions'])} |")
    if "vqa" in metrics:
        v, b = metrics["vqa"], blind.get("vqa", {})
        base = f"{100 * b['vqa_accuracy']:.1f}%" if b else "-"
        rows.append(f"| VQA (held-out) | accuracy | {100 * v['vqa_accuracy']:.1f}% | {base} | "
                    f"{int(v['vqa_questions'])} |")
    if "text" in metrics:
        t = metrics["text"]
        rows.append(f"| text ({t.get('source', '?')} held-out) | perplexity / token | "
                    f"{t['text_perplexity']:.1f} | - | {int(t['text_tokens'])} |")
    samples = []
    for key in ("captioning", "vqa"):
        for s in metrics.get(key, {}).get("samples", [])[:2]:
            samples.append(f"- {key}: " + "; ".join(f"{k}: {v!r}" for k, v in s.items()))
    return "Vision-language and text", "\n".join(rows + ([""] + samples if samples else []))


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


def _positional(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """Let ``gato caption IMAGE --checkpoint RUN`` work: leading positionals become flags."""
    argv = list(argv)
    out, i = [], 0
    for name in names:
        if i < len(argv) and not argv[i].startswith("-"):
            out += [f"--{name}", argv[i]]
            i += 1
    return out + argv[i:]


def caption_main(argv: list[str] | None = None) -> int:
    """`gato caption IMAGE --checkpoint RUN`: print a greedy caption."""
    import tyro

    cfg = tyro.cli(CaptionConfig, args=_positional(argv or [], ("image",)))
    image = load_image(cfg.image, cfg.image_size)  # raises on an unreadable image, before loading
    model, _, _ = load_text_model(cfg.checkpoint)
    print(caption_images(model, [image], cfg.max_new_tokens)[0])
    return 0


def ask_main(argv: list[str] | None = None) -> int:
    """`gato ask IMAGE "question" --checkpoint RUN`: print a greedy answer."""
    import tyro

    cfg = tyro.cli(AskConfig, args=_positional(argv or [], ("image", "question")))
    image = load_image(cfg.image, cfg.image_size)
    model, config, _ = load_text_model(cfg.checkpoint)
    q, p = len(question_ids(cfg.question)), (image.shape[0] // 16) * (image.shape[1] // 16)
    check_prompt_fits(q + p, config.max_len, f"the question ({q} tokens) with the image ({p} patches)")
    print(answer_questions(model, [image], [cfg.question], cfg.max_new_tokens)[0])
    return 0


def complete_main(argv: list[str] | None = None) -> int:
    """`gato complete "prompt" --checkpoint RUN`: print the prompt's greedy continuation."""
    import tyro

    cfg = tyro.cli(CompleteConfig, args=_positional(argv or [], ("prompt",)))
    model, config, _ = load_text_model(cfg.checkpoint)
    check_prompt_fits(len(text_prompt(cfg.prompt)), config.max_len, "the prompt")
    print(cfg.prompt + complete(model, cfg.prompt, cfg.max_new_tokens))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m gato.language --checkpoint RUN``: print (and save) the language metrics JSON."""
    import tyro

    cfg = tyro.cli(LanguageEvalConfig, args=list(sys.argv[1:] if argv is None else argv))
    print(cfg)
    model, _, _ = load_text_model(cfg.checkpoint)
    metrics = evaluate_language(model, cfg)
    text = json.dumps({"config": asdict(cfg), "metrics": metrics}, indent=1)
    print(text)
    print(report_section(metrics)[1])
    if cfg.out:
        from gato.checkpoint import write_json

        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(cfg.out, {"config": asdict(cfg), "metrics": metrics})
    return 0


if __name__ == "__main__":
    sys.exit(main())
