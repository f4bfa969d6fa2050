"""Language metrics of a trained Gato checkpoint: captioning, VQA and held-out text perplexity.

The checkpoint answers through `gato.language` (greedy decoding); the metrics themselves are
`eval.language_metrics`. Results are dicts for `eval.report.write_report(extra=..., extra_sections=...)`:

- `evaluate_captioning` -> ``{"bleu4", "cider", "captions", "samples"}`` on held-out scenes;
- `evaluate_vqa` -> ``{"vqa_accuracy", "vqa_exact_match", "vqa_questions", "samples"}``;
- `evaluate_perplexity` -> ``{"text_perplexity", "text_tokens"}`` on the held-out corpus split;
- `evaluate_language(model, LanguageEvalConfig)` runs the three, and `report_section(metrics)`
  formats them as a Markdown section; ``gato eval-language --checkpoint RUN`` prints them.

The instruction tasks and few-shot prompts (``instruct-caption``, ``matching``, ``grounding``,
``few-shot``) are measured by `eval.vl_tasks`; `evaluate_language` runs those named in
``domains`` (by default, every language domain the checkpoint was trained on).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from datasets_gen.coco import CaptionExample, VQAExample
from envs.atomic import atomic_write_json
from gato import sequence as seq
from gato.language import (LANGUAGE_DOMAINS, TEXT_DOMAINS, answer_questions, batches, caption_images,
                           load_text_model, trained_domains)

def evaluate_captioning(model, examples: Sequence[CaptionExample], image_size: int = 64,
                        max_new_tokens: int = 40, num_samples: int = 3, instruct: bool = False) -> dict:
    """Corpus BLEU-4 and CIDEr-D of greedy captions against every reference caption.

    ``instruct``: ask with the captioning instruction (the "instruct-caption" task)."""
    from eval.language_metrics import caption_scores

    images = [ex.pixels(image_size) for ex in examples]
    preds = caption_images(model, images, max_new_tokens, instruct=instruct)
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
    for chunk in batches(windows, batch_size):
        batch = seq.collate([seq.text_sequence(w, seq_len, domain="text") for w in chunk], seq_len)
        _, metrics = model(batch.to(device))
        nll += float(metrics["loss_sum/text"])
        count += int(metrics["targets/text"])
    return {"text_perplexity": perplexity(nll, count), "text_tokens": float(count)}


@dataclass
class LanguageEvalConfig:
    """Evaluate a checkpoint on captioning, VQA, held-out text, and the instruction tasks and
    few-shot prompts it was trained on (grounding, image-text matching, few-shot)."""

    checkpoint: str = ""
    """run directory (or checkpoint directory) to evaluate."""
    num_scenes: int = 50
    """held-out synthetic scenes ("val" split) for captioning, VQA, grounding (one phrase each)
    and image-text matching (two captions each)."""
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
    domains: tuple[str, ...] = ()
    """which of captioning, vqa, text, instruct-caption, matching, grounding, few-shot to evaluate
    (empty: those the checkpoint was trained on; captioning, vqa and text when that is unknown)."""
    few_shot_episodes: int = 100
    """held-out few-shot episodes, the same ones at every shot count."""
    shot_counts: tuple[int, ...] = (0, 2, 4, 8)
    """few-shot accuracy is measured at each of these numbers of shots."""
    few_shot_ways: int = 2
    """values each few-shot episode renames (chance is 1 / ways)."""
    blind_baselines: bool = True
    """also score image-blind baselines on the synthetic scenes (`blind_baselines`, ~2 s)."""
    out: str | None = None
    """write the metrics JSON here too (an existing file is refused unless --force)."""
    force: bool = False
    """replace an existing --out file."""


def evaluate_language(model, cfg: LanguageEvalConfig) -> dict:
    """Captioning, VQA and perplexity metrics in one flat-ish dict (see the module docstring)."""
    from datasets_gen.coco import load_coco_captions, load_vqa
    from datasets_gen.vision_language import SceneConfig, caption_examples, make_scene, vqa_examples

    domains = cfg.domains or TEXT_DOMAINS
    unknown = sorted(set(domains) - set(LANGUAGE_DOMAINS))
    if unknown:
        raise ValueError(f"cannot evaluate domains {unknown}; expected some of {list(LANGUAGE_DOMAINS)}")
    out: dict = {}
    t0 = time.perf_counter()
    scenes = None
    if (({"captioning", "vqa", "instruct-caption"} & set(domains))
            and not (cfg.coco_captions and cfg.vqa_questions)):
        scenes = [make_scene(i, "val", SceneConfig(image_size=cfg.image_size)) for i in range(cfg.num_scenes)]
    if "captioning" in domains:
        exs = (load_coco_captions(cfg.coco_captions, cfg.coco_images)[:cfg.max_examples]
               if cfg.coco_captions else caption_examples(scenes))
        out["captioning"] = evaluate_captioning(model, exs, cfg.image_size)
    if "instruct-caption" in domains:
        exs = (load_coco_captions(cfg.coco_captions, cfg.coco_images)[:cfg.max_examples]
               if cfg.coco_captions else caption_examples(scenes))
        out["instruct-caption"] = evaluate_captioning(model, exs, cfg.image_size, instruct=True)
    if "vqa" in domains:
        exs = (load_vqa(cfg.vqa_questions, cfg.vqa_annotations, cfg.coco_images)[:cfg.max_examples]
               if cfg.vqa_questions else vqa_examples(scenes, cfg.questions_per_scene))
        out["vqa"] = evaluate_vqa(model, exs, cfg.image_size)
    if "text" in domains:
        from datasets_gen.text_corpus import load_corpus

        corpus = load_corpus(cfg.text_source)
        out["text"] = evaluate_perplexity(model, [d.text for d in corpus.held_out],
                                          max_tokens=cfg.text_max_tokens)
        out["text"]["source"] = cfg.text_source
    if cfg.blind_baselines and scenes is not None:
        out["blind"] = blind_baselines(cfg.num_scenes, cfg.questions_per_scene, cfg.image_size)
    out.update(_instruction_tasks(model, cfg, domains, out.setdefault("blind", {}) if cfg.blind_baselines else {}))
    if not out.get("blind"):
        out.pop("blind", None)
    out["eval_seconds"] = time.perf_counter() - t0
    return out


def _instruction_tasks(model, cfg: LanguageEvalConfig, domains, blind: dict) -> dict:
    """Grounding, matching and few-shot metrics (`eval.vl_tasks`); baselines go into ``blind``."""
    from eval import vl_tasks

    out: dict = {}
    if "grounding" in domains:
        exs = vl_tasks.grounding_examples(cfg.num_scenes, "val", cfg.image_size)
        out["grounding"] = vl_tasks.evaluate_grounding(model, exs)
        if cfg.blind_baselines:
            blind["grounding"] = vl_tasks.blind_grounding(exs, cfg.image_size)
    if "matching" in domains:
        exs = vl_tasks.matching_examples(cfg.num_scenes, "val", cfg.image_size)
        out["matching"] = vl_tasks.evaluate_matching(model, exs)
        if cfg.blind_baselines:
            blind["matching"] = vl_tasks.blind_matching(exs, cfg.image_size)
    if "few-shot" in domains:
        out["few-shot"] = vl_tasks.evaluate_few_shot(model, cfg.shot_counts, cfg.few_shot_episodes,
                                                     cfg.few_shot_ways, cfg.image_size)
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
    from eval.vl_tasks import accuracy_row, report_rows, table_row

    blind = metrics.get("blind", {})
    rows = ["| task | metric | Gato | image-blind baseline | n |", "| --- | --- | --- | --- | --- |"]
    for task in ("captioning", "instruct-caption"):
        if task not in metrics:
            continue
        c, b = metrics[task], blind.get("captioning", {})
        for key, name in (("bleu4", "BLEU-4"), ("cider", "CIDEr-D")):
            rows.append(table_row(f"{task} (held-out)", name, f"{c[key]:.3f}", f"{b[key]:.3f}" if key in b else "-",
                                  c["captions"]))
    if "vqa" in metrics:
        rows.append(accuracy_row("VQA (held-out)", "accuracy", metrics["vqa"], blind.get("vqa", {}),
                                 "vqa_accuracy", "vqa_questions"))
    if "text" in metrics:
        t = metrics["text"]
        rows.append(table_row(f"text ({t.get('source', '?')} held-out)", "perplexity / token",
                              f"{t['text_perplexity']:.1f}", "-", t["text_tokens"]))
    rows += report_rows(metrics)
    samples = []
    for key in ("captioning", "instruct-caption", "vqa", "grounding"):
        for s in metrics.get(key, {}).get("samples", [])[:2]:
            samples.append(f"- {key}: " + "; ".join(f"{k}: {v!r}" for k, v in s.items()))
    return "Vision-language and text", "\n".join(rows + ([""] + samples if samples else []))


def main(argv: list[str] | None = None) -> int:
    """``gato eval-language --checkpoint RUN``: print (and save) the language metrics JSON."""
    from envs.commandline import UsageError, at_least, check_dir, check_out_files, parse

    cfg = parse(LanguageEvalConfig, argv, "gato eval-language")
    if not cfg.checkpoint:
        raise UsageError("--checkpoint is required (a run directory of `gato train`)")
    check_dir(cfg.checkpoint, "--checkpoint", "run directory")
    for flag, value in (("--num-scenes", cfg.num_scenes), ("--questions-per-scene", cfg.questions_per_scene),
                        ("--max-examples", cfg.max_examples), ("--text-max-tokens", cfg.text_max_tokens),
                        ("--few-shot-episodes", cfg.few_shot_episodes), ("--few-shot-ways", cfg.few_shot_ways)):
        at_least(value, 1, flag)
    for k in cfg.shot_counts:
        at_least(k, 0, "--shot-counts")
    unknown = sorted(set(cfg.domains) - set(LANGUAGE_DOMAINS))
    if unknown:
        raise UsageError(f"--domains {' '.join(unknown)}: unknown; expected some of {' '.join(LANGUAGE_DOMAINS)}")
    if cfg.out:
        check_out_files([cfg.out], force=cfg.force)
    loaded = load_text_model(cfg.checkpoint)
    model = loaded.model
    if not cfg.domains:
        trained = trained_domains(cfg.checkpoint, loaded)
        cfg.domains = (tuple(d for d in LANGUAGE_DOMAINS if d in trained) if trained is not None else ()) or TEXT_DOMAINS
    metrics = evaluate_language(model, cfg)
    text = json.dumps({"config": asdict(cfg), "metrics": metrics}, indent=1)
    print(text)
    print(report_section(metrics)[1])
    if cfg.out:
        atomic_write_json(cfg.out, {"config": asdict(cfg), "metrics": metrics}, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
