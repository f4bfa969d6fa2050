"""Hand-computed checks of BLEU-4, CIDEr-D, VQA accuracy and perplexity (eval/language_metrics.py)."""

import math

import pytest

from eval.language_metrics import (bleu, bleu4, caption_scores, caption_tokens, cider, normalize_answer,
                                   perplexity, vqa_accuracy, vqa_exact_match, vqa_scores)


def test_caption_tokens_drop_case_and_punctuation():
    assert caption_tokens("A red circle, on the LEFT.") == ["a", "red", "circle", "on", "the", "left"]


def test_bleu_identical_is_one():
    assert bleu4(["the cat sat on the mat"], [["the cat sat on the mat"]]) == pytest.approx(1.0)


def test_bleu_hand_example():
    # candidate "the cat sat on a mat" vs reference "the cat sat on the mat":
    # 1-grams 5/6, 2-grams 3/5 (the cat, cat sat, sat on), 3-grams 2/4, 4-grams 1/3; same length
    # so BP = 1; BLEU-4 = (5/6 * 3/5 * 2/4 * 1/3) ** (1/4) = (1/12) ** 0.25.
    out = bleu(["the cat sat on a mat"], [["the cat sat on the mat"]])
    assert [out[f"precision_{n}"] for n in (1, 2, 3, 4)] == pytest.approx([5 / 6, 3 / 5, 2 / 4, 1 / 3])
    assert out["brevity_penalty"] == 1.0
    assert out["bleu"] == pytest.approx((1 / 12) ** 0.25)


def test_bleu_brevity_penalty_and_clipping():
    # 5-word candidate, 6-word reference: every n-gram matches, BP = exp(1 - 6/5).
    out = bleu(["the cat sat on the"], [["the cat sat on the mat"]])
    assert out["bleu"] == pytest.approx(math.exp(1 - 6 / 5))
    # "the the the the" vs "the cat": unigram "the" clipped to 1 of 4, no bigram match -> 0.
    out = bleu(["the the the the"], [["the cat"]])
    assert out["precision_1"] == pytest.approx(1 / 4)
    assert out["bleu"] == 0.0


def test_bleu_closest_reference_length_and_corpus_sums():
    # Candidate of 3 words, references of 2 and 4 words: tie at distance 1, the shorter (2) is used.
    out = bleu(["a b c"], [["a b", "a b c d"]])
    assert out["reference_length"] == 2.0 and out["brevity_penalty"] == 1.0
    # Corpus level sums counts over sentences before dividing: unigram precision (2 + 0) / (2 + 2).
    out = bleu(["a b", "x y"], [["a b"], ["c d"]], max_n=1)
    assert out["precision_1"] == pytest.approx(0.5)


def test_cider_identity_zero_and_hand_case():
    refs = [["a red circle on the left"], ["a blue square at the top"]]
    same = cider(["a red circle on the left", "a blue square at the top"], refs)
    assert same["per_image"] == pytest.approx([10.0, 10.0])
    disjoint = cider(["green triangle", "purple"], refs)
    assert disjoint["per_image"] == [0.0, 0.0]
    # Two images, refs "red circle" / "blue square"; every n-gram is in one image: idf = log 2.
    # Image 0: candidate equals reference; 1- and 2-gram similarity 1, no 3/4-grams -> 10*2/4 = 5.
    # Image 1: "blue circle" vs "blue square": 1-gram cosine 1/2, 2-gram 0 -> 10*0.5/4 = 1.25.
    out = cider(["red circle", "blue circle"], [["red circle"], ["blue square"]])
    assert out["per_image"] == pytest.approx([5.0, 1.25])
    assert out["cider"] == pytest.approx(3.125)


def test_cider_bad_input():
    with pytest.raises(ValueError, match="at least 2 images"):
        cider(["a b"], [["a b"]])
    with pytest.raises(ValueError, match="reference lists"):
        cider(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="wrap a single reference"):
        bleu(["a"], ["a"])


def test_vqa_normalization():
    assert normalize_answer("Two.") == "2"
    assert normalize_answer("The  Red-Circle!") == "red circle"
    assert normalize_answer("an apple") == "apple"
    assert normalize_answer("dont know") == "don't know"
    assert normalize_answer("1,000") == "1000"
    assert normalize_answer("3.5") == "3.5"
    assert normalize_answer("yes") == "yes"


def test_vqa_accuracy_consensus_and_exact_match():
    # 3 of 10 humans said "2": leaving out one of those leaves 2 matches (2/3), leaving out one of
    # the other 7 leaves 3 matches (1): (3 * 2/3 + 7 * 1) / 10 = 0.9.
    assert vqa_accuracy("two", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)
    assert vqa_accuracy("red", ["red"] * 10) == 1.0
    assert vqa_accuracy("blue", ["red"] * 10) == 0.0
    assert vqa_accuracy("The circle", ["circle"]) == 1.0  # one answer: exact match
    assert vqa_exact_match("Yes!", "yes") == 1.0
    out = vqa_scores(["red", "no"], [["red"] * 10, ["yes"] * 10])
    assert out == {"vqa_accuracy": 0.5, "vqa_exact_match": 0.5, "vqa_questions": 2.0}


def test_caption_scores_keys():
    out = caption_scores(["a red circle on the left", "a blue square"],
                         [["a red circle on the left"], ["a blue square"]])
    assert out["bleu4"] == pytest.approx(1.0)
    assert out["captions"] == 2.0


def test_perplexity():
    assert perplexity(4 * math.log(8), 4) == pytest.approx(8.0)
    assert perplexity(0.0, 3) == 1.0
    with pytest.raises(ValueError, match="num_tokens=0"):
        perplexity(1.0, 0)
    with pytest.raises(ValueError, match="finite"):
        perplexity(float("nan"), 2)


# ----------------------------------------------------------------------------- the reference implementation

# Captions of unequal lengths, with n-grams repeated within a candidate ("red red", "the the",
# "green green") more often than any reference holds them, so that clipping and the CIDEr-D length
# penalty both change the scores.
COCO_CASES = [
    (["a red red circle on the the left", "the blue square",
      "a green triangle above a green green square near the top"],
     [["a red circle on the left side", "red circle left"],
      ["a blue square at the top of the image", "blue square"],
      ["green triangle above green square", "a green triangle sits above a green square at the top",
       "triangle over square"]]),
    (["the the the the cat", "a dog", "dog dog dog on a mat on a mat", "one"],
     [["the cat"], ["a dog sat on the mat", "the dog"], ["a dog on a mat"], ["one two three four five six seven"]]),
]


def _coco_scores(candidates, references):
    """BLEU-1..4 and CIDEr-D from pycocoevalcap (the COCO caption server's code) on our tokens."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    gts = {i: [" ".join(caption_tokens(r)) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(caption_tokens(c))] for i, c in enumerate(candidates)}
    bleus, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider_mean, cider_per = Cider().compute_score(gts, res)
    return bleus, cider_mean, list(cider_per)


@pytest.mark.parametrize("candidates,references", COCO_CASES)
def test_bleu_and_cider_equal_pycocoevalcap(candidates, references):
    bleus, cider_mean, cider_per = _coco_scores(candidates, references)
    ours = bleu(candidates, references)
    # pycocoevalcap adds 1e-15 / 1e-9 to counts to avoid log(0); on non-zero precisions that is
    # far below 1e-7 relative.
    assert [ours[f"bleu_{n}"] for n in (1, 2, 3, 4)] == pytest.approx(bleus, rel=1e-7, abs=1e-9)
    got = cider(candidates, references)
    assert got["per_image"] == pytest.approx(cider_per, rel=1e-9)
    assert got["cider"] == pytest.approx(cider_mean, rel=1e-9)


def test_coco_cases_exercise_clipping_and_the_length_penalty():
    # Without the Gaussian length penalty (sigma -> infinity) the scores differ from the reference's,
    # so a regression that drops it fails the test above.
    for candidates, references in COCO_CASES:
        _, _, cider_per = _coco_scores(candidates, references)
        assert cider(candidates, references, sigma=1e9)["per_image"] != pytest.approx(cider_per, rel=1e-6)
    # Unclipped BLEU precision of "the the the the cat" vs "the cat" would be 5/5; clipped it is 2/5.
    assert bleu(["the the the the cat"], [["the cat"]], max_n=1)["precision_1"] == pytest.approx(2 / 5)
