"""Instruction-task and few-shot metrics of a checkpoint, with the baselines that need no image.

Held-out synthetic scenes ("val" split) and episodes; the checkpoint answers through
`gato.language`:

- `evaluate_grounding` -> ``{"grounding_accuracy", "mean_iou", "grounding_examples", "samples"}``:
  the share of boxes with IoU >= 0.5 against the shape's true box (`box_iou`);
- `evaluate_matching` -> ``{"matching_accuracy", "matching_auc", "matching_examples", "yes_rate", "by_kind"}``:
  "yes" when P("yes") > 0.5 after 'does the image describe "<caption>"?'; half of the captions
  are true, a quarter another scene's, a quarter the scene's with one change. ``matching_auc``
  (`roc_auc`) asks whether P("yes") ranks true captions above false ones whatever the threshold
  (0.5 for a model that ignores the image);
- `evaluate_few_shot` -> ``{"shots": {k: {"accuracy", "exact_match", "episodes"}}, "chance"}``:
  per shot count, the closed-set accuracy (the most likely of the episode's names) and the
  exact match of the greedy text;
- `blind_grounding` / `blind_matching`: what the tasks give without the image: per phrase, the
  one box that scores best on the training scenes; the majority answer.

``gato eval-language --checkpoint RUN --domains grounding matching few-shot`` runs them
(`eval.language.evaluate_language`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

IOU_THRESHOLD = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``(..., 4)`` ``(x0, y0, x1, y1)`` (ends exclusive), broadcast over the leading axes.

    Example:
        >>> float(box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])))  # 50 / 150
        0.3333333333333333
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def grounding_examples(num_scenes: int, split: str = "val", image_size: int = 64,
                       per_scene: int = 1, seed: int = 0) -> list[tuple[np.ndarray, str, tuple]]:
    """``(image, phrase, true box)`` examples: up to ``per_scene`` shapes of each scene that a
    phrase picks out alone, each with one of its phrases (`referring_expressions`), seeded."""
    from datasets_gen.vision_language import SceneConfig, make_scene, referring_expressions

    rng = np.random.default_rng([seed, 7])
    out = []
    for i in range(num_scenes):
        s = make_scene(i, split, SceneConfig(image_size=image_size))
        found = [(o, referring_expressions(o, s.objects)) for o in s.objects]
        found = [(o, ph) for o, ph in found if ph]
        for j in rng.permutation(len(found))[:per_scene]:
            o, phrases = found[int(j)]
            out.append((s.image, phrases[int(rng.integers(len(phrases)))], o.box))
    return out


def evaluate_grounding(model, examples: Sequence[tuple[np.ndarray, str, tuple]], num_samples: int = 3) -> dict:
    """Accuracy at IoU >= 0.5 and mean IoU of the boxes the model gives for the phrases."""
    from gato.language import ground_phrases

    if not examples:
        raise ValueError("no grounding examples to evaluate")
    preds = ground_phrases(model, [e[0] for e in examples], [e[1] for e in examples])
    ious = np.array([float(box_iou(p, np.asarray(e[2], np.float64))) for p, e in zip(preds, examples)])
    return {"grounding_accuracy": float((ious >= IOU_THRESHOLD).mean()), "mean_iou": float(ious.mean()),
            "grounding_examples": float(len(examples)),
            "samples": [{"phrase": e[1], "box": [round(float(v), 1) for v in p], "true_box": list(e[2]),
                         "iou": round(float(i), 3)} for e, p, i in zip(examples, preds, ious)][:num_samples]}


def blind_grounding(examples: Sequence[tuple[np.ndarray, str, tuple]], image_size: int = 64,
                    train_scenes: int = 2000, max_candidates: int = 300) -> dict:
    """The image-blind grounding baseline: each phrase gets one fixed box, the one with the best
    accuracy at IoU >= 0.5 over that phrase's training examples (all phrases' boxes when the
    phrase never occurs in training)."""
    from datasets_gen.vision_language import SceneConfig, make_scene, referring_expressions

    by_phrase: dict[str, list] = {}
    for i in range(train_scenes):
        s = make_scene(i, "train", SceneConfig(image_size=image_size))
        for o in s.objects:
            for ph in referring_expressions(o, s.objects):
                by_phrase.setdefault(ph, []).append(o.box)
    every = np.array([b for boxes in by_phrase.values() for b in boxes], np.float64)

    def best(boxes: np.ndarray) -> np.ndarray:
        cands = np.unique(boxes, axis=0)[:max_candidates]
        hits = (box_iou(cands[:, None], boxes[None]) >= IOU_THRESHOLD).mean(1)
        return cands[int(np.argmax(hits))]

    chosen: dict[str, np.ndarray] = {}
    ious = []
    for _, phrase, box in examples:
        if phrase not in chosen:
            chosen[phrase] = best(np.array(by_phrase[phrase], np.float64) if phrase in by_phrase else every)
        ious.append(float(box_iou(chosen[phrase], np.asarray(box, np.float64))))
    ious = np.array(ious)
    return {"grounding_accuracy": float((ious >= IOU_THRESHOLD).mean()), "mean_iou": float(ious.mean()),
            "grounding_examples": float(len(examples))}


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The chance that a random positive scores above a random negative (ties count half).

    Example:
        >>> roc_auc(np.array([0.9, 0.4, 0.4, 0.1]), np.array([True, True, False, False]))
        0.875
    """
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    pos, neg = scores[positive][:, None], scores[~positive][None, :]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def matching_examples(num_scenes: int, split: str = "val", image_size: int = 64,
                      per_scene: int = 2, seed: int = 0) -> list[tuple[np.ndarray, str, str, str]]:
    """``(image, caption, "yes" or "no", kind)``: ``per_scene`` `matching_pair` draws per scene, seeded."""
    from datasets_gen.vision_language import SceneConfig, make_scene, matching_pair

    rng = np.random.default_rng([seed, 11])
    out = []
    for i in range(num_scenes):
        s = make_scene(i, split, SceneConfig(image_size=image_size))
        for _ in range(per_scene):
            out.append((s.image, *matching_pair(s, rng)))
    return out


def evaluate_matching(model, examples: Sequence[tuple[np.ndarray, str, str, str]]) -> dict:
    """Accuracy of "yes" iff P("yes") > 0.5, how often the model says "yes", and the accuracy
    per kind of caption (`datasets_gen.vision_language.MATCHING_KINDS`)."""
    from gato.language import match_probabilities

    if not examples:
        raise ValueError("no matching examples to evaluate")
    p = match_probabilities(model, [e[0] for e in examples], [e[1] for e in examples])
    truth = np.array([e[2] == "yes" for e in examples])
    right = (p > 0.5) == truth
    kinds = np.array([e[3] for e in examples])
    return {"matching_accuracy": float(right.mean()), "matching_auc": roc_auc(p, truth),
            "yes_rate": float((p > 0.5).mean()),
            "matching_examples": float(len(examples)),
            "by_kind": {k: {"accuracy": float(right[kinds == k].mean()), "n": int((kinds == k).sum())}
                        for k in sorted(set(kinds.tolist()))}}


def blind_matching(examples: Sequence[tuple[np.ndarray, str, str, str]], image_size: int = 64,
                   train_scenes: int = 2000) -> dict:
    """The image-blind matching baseline: always the training split's majority answer."""
    train = matching_examples(train_scenes, "train", image_size, per_scene=1, seed=1)
    yes = sum(e[2] == "yes" for e in train) >= len(train) / 2
    acc = float(np.mean([(e[2] == "yes") == yes for e in examples]))
    return {"matching_accuracy": acc, "answer": "yes" if yes else "no", "matching_examples": float(len(examples))}


def evaluate_few_shot(model, shot_counts: Sequence[int] = (0, 2, 4, 8), episodes: int = 100,
                      ways: int = 2, image_size: int = 64, split: str = "val",
                      max_new_tokens: int = 8) -> dict:
    """Few-shot accuracy per shot count on the same held-out episodes.

    Episode ``e`` of ``split`` gives every shot count its first ``k`` shots (balanced rounds) and
    the same query. ``accuracy``: the most likely of the episode's candidate texts is the true
    one (chance ``1 / ways``); ``exact_match``: the greedy text equals it.
    """
    from datasets_gen.vision_language import few_shot_episode
    from gato.language import few_shot_caption, rank_candidates
    from gato.multimodal import few_shot_prompt

    if episodes < 1 or not shot_counts:
        raise ValueError("need at least one episode and one shot count")
    most = max(shot_counts)
    eps = [few_shot_episode(e, split, most, ways, image_size) for e in range(episodes)]
    out: dict = {"chance": 1.0 / ways, "ways": ways, "shots": {}}
    for k in shot_counts:
        right = exact = 0
        for ep in eps:
            shots = [(p.image, p.text) for p in ep.shots[:k]]
            right += rank_candidates(model, few_shot_prompt(shots, ep.query.image), ep.candidates) == ep.answer
            exact += few_shot_caption(model, shots, ep.query.image, max_new_tokens).strip() == ep.query.text
        out["shots"][str(k)] = {"accuracy": right / len(eps), "exact_match": exact / len(eps),
                                "episodes": float(len(eps))}
    return out


def table_row(task: str, metric: str, value: str, baseline: str, n: float) -> str:
    """One row of `eval.language.report_section`'s table, ``| task | metric | Gato | image-blind
    baseline | n |``, for these tasks and for captioning, VQA and text alike."""
    return f"| {task} | {metric} | {value} | {baseline} | {int(n)} |"


def accuracy_row(task: str, metric: str, result: dict, baseline: dict, key: str, count: str) -> str:
    """The row of an accuracy ``result[key]`` in %, against the baseline's ``baseline[key]`` ("-"
    when no baseline ran), over ``result[count]`` examples."""
    base = f"{100 * baseline[key]:.1f}%" if baseline else "-"
    return table_row(task, metric, f"{100 * result[key]:.1f}%", base, result[count])


def report_rows(metrics: dict) -> list[str]:
    """Rows of `eval.language.report_section`'s table for these tasks (empty when none ran)."""
    blind = metrics.get("blind", {})
    rows = []
    if "grounding" in metrics:
        rows.append(accuracy_row("grounding (held-out)", "accuracy at IoU >= 0.5", metrics["grounding"],
                                 blind.get("grounding", {}), "grounding_accuracy", "grounding_examples"))
    if "matching" in metrics:
        rows.append(accuracy_row("image-text matching (held-out)", "accuracy", metrics["matching"],
                                 blind.get("matching", {}), "matching_accuracy", "matching_examples"))
    if "few-shot" in metrics:
        f = metrics["few-shot"]
        for k, v in f["shots"].items():
            rows.append(table_row(f"few-shot, {k} shots ({f['ways']}-way, held-out names)", "accuracy",
                                  f"{100 * v['accuracy']:.1f}%", f"chance {100 * f['chance']:.0f}%", v["episodes"]))
    return rows
