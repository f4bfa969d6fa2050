"""Captioning, VQA and language-model metrics in pure Python (no Java, no downloads).

- **BLEU-4** (Papineni et al., 2002), corpus level: clipped n-gram precisions for n = 1..4 summed
  over the corpus, geometric mean, times the brevity penalty ``exp(1 - r/c)`` when the candidates'
  total length ``c`` is below the effective reference length ``r`` (per sentence, the reference
  length closest to the candidate's; the shorter one on a tie). No smoothing: a zero precision
  gives 0.
- **CIDEr** in its CIDEr-D form (Vedantam et al., 2015), the variant the COCO caption server
  reports as "CIDEr": TF-IDF vectors of n-grams (n = 1..4) with document frequencies over the
  images' reference sets, ``idf(g) = log(N) - log(max(1, df(g)))``; per n, the cosine-like
  similarity with the candidate's weights clipped to the reference's, times the Gaussian length
  penalty ``exp(-(len_c - len_r)^2 / (2 * 6^2))``, averaged over references, then the mean over n
  times 10. Needs at least two images (with one, every idf is 0).
- **VQA accuracy** (Antol et al., 2015): answers normalized like the official evaluation
  (lower case, punctuation, number words to digits, articles dropped, common contractions);
  with k human answers, ``min(1, #matches among the other k-1 / 3)`` averaged over the k
  leave-one-out subsets. With 10 identical answers (our synthetic data) it equals exact match.
- **Perplexity**: ``exp(total negative log-likelihood / number of predicted tokens)``.

Captions are tokenized by `caption_tokens`: lower case, punctuation removed, split on spaces
(like the PTB tokenization of the COCO evaluation, which drops punctuation tokens).

BLEU-1..4 and CIDEr-D equal the COCO caption server's reference code (``pycocoevalcap`` 1.2, a test
dependency) on the same tokens, to 1e-7 relative: `tests/test_language_metrics.py` compares them on
captions of unequal lengths with repeated n-grams, where clipping and the length penalty matter.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# ----------------------------------------------------------------------------- tokens

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def caption_tokens(text: str) -> list[str]:
    """Lower-case words of a caption, punctuation dropped.

    Example:
        >>> caption_tokens("A red circle, on the LEFT.")
        ['a', 'red', 'circle', 'on', 'the', 'left']
    """
    return _WORD.findall(text.lower())


def ngrams(words: list[str], n: int) -> Counter:
    """Counts of the n-grams (tuples) of a word list."""
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def _check_pairs(candidates: list[str], references: list[list[str]]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists: "
                         f"give one list of references per candidate")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"references[{i}]={refs!r}: each entry must be a non-empty list of "
                             f"reference strings (wrap a single reference in a list)")


# ----------------------------------------------------------------------------- BLEU

def bleu(candidates: list[str], references: list[list[str]], max_n: int = 4) -> dict[str, float]:
    """Corpus BLEU of ``candidates`` against their reference lists.

    Returns:
        ``{"bleu": BLEU-max_n, "bleu_1".."bleu_<max_n>": cumulative BLEU-n,
        "precision_1".."precision_<max_n>", "brevity_penalty", "candidate_length",
        "reference_length"}``.

    Example:
        >>> round(bleu(["the cat sat on a mat"], [["the cat sat on the mat"]])["bleu"], 4)
        0.5373
    """
    _check_pairs(candidates, references)
    clipped = [0] * (max_n + 1)
    total = [0] * (max_n + 1)
    c_len = r_len = 0
    for cand, refs in zip(candidates, references):
        words = caption_tokens(cand)
        ref_words = [caption_tokens(r) for r in refs]
        c_len += len(words)
        # The reference length closest to the candidate's; the shorter on a tie.
        r_len += min((abs(len(r) - len(words)), len(r)) for r in ref_words)[1]
        for n in range(1, max_n + 1):
            counts = ngrams(words, n)
            max_ref: Counter = Counter()
            for r in ref_words:
                max_ref |= ngrams(r, n)  # element-wise max
            clipped[n] += sum(min(c, max_ref[g]) for g, c in counts.items())
            total[n] += max(len(words) - n + 1, 0)
    precisions = [clipped[n] / total[n] if total[n] else 0.0 for n in range(1, max_n + 1)]
    if c_len == 0:
        bp = 0.0
    else:
        bp = 1.0 if c_len > r_len else math.exp(1.0 - r_len / c_len)
    out: dict[str, float] = {}
    for n in range(1, max_n + 1):
        ps = precisions[:n]
        out[f"bleu_{n}"] = bp * math.exp(sum(math.log(p) for p in ps) / n) if min(ps) > 0 else 0.0
        out[f"precision_{n}"] = precisions[n - 1]
    out.update(bleu=out[f"bleu_{max_n}"], brevity_penalty=bp, candidate_length=float(c_len),
               reference_length=float(r_len))
    return out


def bleu4(candidates: list[str], references: list[list[str]]) -> float:
    """Corpus BLEU-4 (see `bleu`)."""
    return bleu(candidates, references, 4)["bleu"]


# ----------------------------------------------------------------------------- CIDEr-D

def cider(candidates: list[str], references: list[list[str]], max_n: int = 4,
          sigma: float = 6.0) -> dict[str, float | list[float]]:
    """CIDEr-D of each candidate against its references, and the corpus mean.

    Returns:
        ``{"cider": mean over images, "per_image": [score per candidate]}``.

    Example:
        >>> cider(["a red circle on the left", "a blue square"],
        ...       [["a red circle on the left"], ["a green triangle"]])["per_image"][0]
        10.0
    """
    _check_pairs(candidates, references)
    num_images = len(candidates)
    if num_images < 2:
        raise ValueError("CIDEr needs at least 2 images: its idf weights are log(N / df) and with "
                         "N=1 every n-gram gets weight 0")
    cand_words = [caption_tokens(c) for c in candidates]
    ref_words = [[caption_tokens(r) for r in refs] for refs in references]
    ref_counts = [[[ngrams(r, n) for n in range(1, max_n + 1)] for r in refs] for refs in ref_words]
    df: Counter = Counter()
    for refs in ref_counts:
        seen = set()
        for per_n in refs:
            for counts in per_n:
                seen.update(counts)
        df.update(seen)  # each image counts once per n-gram
    log_n = math.log(float(num_images))

    def vectors(per_n: list[Counter]) -> tuple[list[dict], list[float]]:
        vecs, norms = [], []
        for counts in per_n:
            v = {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in counts.items()}
            vecs.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        return vecs, norms

    scores = []
    for words, refs_w, refs_c in zip(cand_words, ref_words, ref_counts):
        c_vec, c_norm = vectors([ngrams(words, n) for n in range(1, max_n + 1)])
        per_n = [0.0] * max_n
        for r_w, r_counts in zip(refs_w, refs_c):
            r_vec, r_norm = vectors(r_counts)
            penalty = math.exp(-((len(words) - len(r_w)) ** 2) / (2 * sigma ** 2))
            for n in range(max_n):
                if c_norm[n] == 0 or r_norm[n] == 0:
                    continue
                dot = sum(min(x, r_vec[n].get(g, 0.0)) * r_vec[n].get(g, 0.0)
                          for g, x in c_vec[n].items())
                per_n[n] += dot / (c_norm[n] * r_norm[n]) * penalty
        scores.append(10.0 * sum(p / len(refs_w) for p in per_n) / max_n)
    return {"cider": sum(scores) / num_images, "per_image": scores}


# ----------------------------------------------------------------------------- VQA

_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
          "`", ",", "?", "!")
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
            "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {
    "arent": "aren't", "cant": "can't", "couldnt": "couldn't", "didnt": "didn't",
    "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't",
    "havent": "haven't", "isnt": "isn't", "its": "it's", "shouldnt": "shouldn't",
    "thats": "that's", "theres": "there's", "theyre": "they're", "wasnt": "wasn't",
    "werent": "weren't", "whats": "what's", "wont": "won't", "wouldnt": "wouldn't",
    "youre": "you're", "im": "i'm", "ive": "i've", "lets": "let's",
}
_DIGIT_COMMA = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"(?<!\d)\.|\.(?!\d)")  # a period that is not a decimal point


def normalize_answer(answer: str) -> str:
    """Normalize a VQA answer the way the official VQA evaluation does.

    Lower case; periods dropped unless between digits; each punctuation mark deleted when it
    touches a space (or the answer has a digit-comma-digit number), else replaced by a space;
    number words zero..ten (and "none") become digits; articles a/an/the are dropped; common
    contractions written without the apostrophe get it back.

    Example:
        >>> normalize_answer("Two.")
        '2'
        >>> normalize_answer("The  Red-Circle!")
        'red circle'
        >>> normalize_answer("dont know")
        "don't know"
    """
    text = " ".join(answer.replace("\n", " ").replace("\t", " ").lower().split())
    joined = _DIGIT_COMMA.search(text) is not None
    for p in _PUNCT:
        if joined or (p + " ") in text or (" " + p) in text:
            text = text.replace(p, "")
        else:
            text = text.replace(p, " ")
    text = _PERIOD.sub("", text)
    words = []
    for w in text.split():
        w = _NUMBERS.get(w, w)
        if w in _ARTICLES:
            continue
        words.append(_CONTRACTIONS.get(w, w))
    return " ".join(words)


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """VQA consensus accuracy of one prediction against the human answers.

    With k >= 2 answers: the mean over the k leave-one-out subsets of
    ``min(1, matches in the subset / 3)``. With one answer: exact match after normalization.

    Example:
        >>> vqa_accuracy("two", ["2"] * 3 + ["3"] * 7)
        0.9
    """
    if not answers:
        raise ValueError("vqa_accuracy needs at least one reference answer")
    pred = normalize_answer(prediction)
    gts = [normalize_answer(a) for a in answers]
    if len(gts) == 1:
        return float(pred == gts[0])
    matches = sum(g == pred for g in gts)
    total = 0.0
    for g in gts:
        others = matches - (g == pred)
        total += min(1.0, others / 3.0)
    return total / len(gts)


def vqa_exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalized prediction equals the normalized answer, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(answer))


def vqa_scores(predictions: list[str], answers: list[list[str]],
               multiple_choice_answers: list[str] | None = None) -> dict[str, float]:
    """Mean VQA consensus accuracy and exact match (against the most common answer).

    Returns:
        ``{"vqa_accuracy": ..., "vqa_exact_match": ..., "vqa_questions": n}``.
    """
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answer lists")
    if not predictions:
        raise ValueError("no VQA predictions to score")
    if multiple_choice_answers is None:
        multiple_choice_answers = [Counter(normalize_answer(a) for a in ans).most_common(1)[0][0]
                                   for ans in answers]
    acc = sum(vqa_accuracy(p, a) for p, a in zip(predictions, answers)) / len(predictions)
    em = sum(vqa_exact_match(p, m) for p, m in zip(predictions, multiple_choice_answers))
    return {"vqa_accuracy": acc, "vqa_exact_match": em / len(predictions),
            "vqa_questions": float(len(predictions))}


def caption_scores(candidates: list[str], references: list[list[str]]) -> dict[str, float]:
    """``{"bleu4": corpus BLEU-4, "cider": mean CIDEr-D, "captions": n}``."""
    return {"bleu4": bleu4(candidates, references),
            "cider": float(cider(candidates, references)["cider"]),
            "captions": float(len(candidates))}


# ----------------------------------------------------------------------------- perplexity

def perplexity(total_nll: float, num_tokens: int) -> float:
    """``exp(total_nll / num_tokens)``: the perplexity of a model on ``num_tokens`` predictions.

    Args:
        total_nll: summed negative log-likelihood (natural log) of the predicted tokens.
        num_tokens: how many tokens were predicted.

    Example:
        >>> round(perplexity(4 * math.log(8), 4), 6)  # uniform over 8 choices
        8.0
    """
    if num_tokens <= 0:
        raise ValueError(f"num_tokens={num_tokens}: perplexity needs at least one predicted token")
    if not math.isfinite(total_nll) or total_nll < 0:
        raise ValueError(f"total_nll={total_nll} must be a finite, non-negative sum of -log p")
    return math.exp(total_nll / num_tokens)
