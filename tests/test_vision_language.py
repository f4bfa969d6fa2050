"""Synthetic scenes, COCO/VQA loaders, text corpus, VL/text batch sources, decoding and the CLI."""

import json
import re

import numpy as np
import pytest
import torch

from datasets_gen import coco
from datasets_gen import text_corpus as tc
from datasets_gen import vision_language as vl
from datasets_gen.vision_language import SceneObject
from tiny import tiny_config, tiny_model
from gato import sequence as seq
from gato.tokenizer import PAD, TEXT_EOS


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run ~8x faster on one thread than on two contended ones; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# ----------------------------------------------------------------------------- scenes


def obj(shape, color, size, cell):
    r = 9 if size == "large" else 5
    return SceneObject(shape, color, size, cell, (11 + 21 * cell[1], 11 + 21 * cell[0]), r)


BIG_RED_CIRCLE = obj("circle", "red", "large", (0, 0))
SMALL_RED_CIRCLE = obj("circle", "red", "small", (1, 2))
BLUE_SQUARE = obj("square", "blue", "small", (2, 1))


def test_unique_referent():
    objs = [BIG_RED_CIRCLE, SMALL_RED_CIRCLE, BLUE_SQUARE]
    assert vl.unique_referent(objs, shape="circle") is None  # two circles
    assert vl.unique_referent(objs, color="red") is None  # two red objects
    assert vl.unique_referent(objs, color="green") is None  # none
    assert vl.unique_referent(objs, color="blue") is BLUE_SQUARE
    assert vl.unique_referent(objs, shape="circle", size="small") is SMALL_RED_CIRCLE
    assert vl.describe(SMALL_RED_CIRCLE, objs) == "small circle"
    assert vl.describe(BLUE_SQUARE, objs) == "square"
    assert vl.describe(BLUE_SQUARE, objs, omit="shape") == "blue object"


def test_questions_never_name_an_ambiguous_object():
    # Two identical small red circles: no description picks out one of them.
    twins = [obj("circle", "red", "small", (0, 0)), obj("circle", "red", "small", (2, 2))]
    qs = {q.question: q.answer for q in vl.questions_for(twins)}
    assert not any("circle" in q and q.startswith(("what", "where")) for q in qs)
    assert qs["how many shapes are there?"] == "2"
    assert qs["how many red shapes are there?"] == "2"
    assert qs["is there a red circle?"] == "yes"
    qs = {q.question: q.answer for q in vl.questions_for([BIG_RED_CIRCLE, SMALL_RED_CIRCLE, BLUE_SQUARE])}
    assert "what color is the circle?" not in qs
    assert qs["what color is the small circle?"] == "red"
    assert qs["where is the large circle?"] == "top left"
    assert qs["where is the square?"] == "bottom"
    assert qs["what shape is the blue object?"] == "square"


_Q = re.compile(r"^(what color|what shape|what size|where) is the (.+)\?$")


def test_every_generated_question_has_one_referent_and_the_right_answer():
    for i in range(150):
        s = vl.make_scene(i, "train")
        for qa in s.questions:
            m = _Q.match(qa.question)
            if not m:
                continue
            words = m.group(2).split()
            attrs = {"shape": words[-1] if words[-1] != "object" else None}
            for w in words[:-1]:
                attrs["size" if w in vl.SIZES else "color"] = w
            found = vl.matching(s.objects, **attrs)
            assert len(found) == 1, (i, qa)
            o = found[0]
            expected = {"what color": o.color, "what shape": o.shape, "what size": o.size,
                        "where": o.position}[m.group(1)]
            assert qa.answer == expected, (i, qa)


def test_captions_of_a_hand_made_scene():
    s = vl.scene_from_objects([BLUE_SQUARE, BIG_RED_CIRCLE])
    assert s.captions == [
        "a large red circle at the top left and a small blue square at the bottom",
        "there is a large red circle and a small blue square",
        "two shapes: a red circle and a blue square",
    ]
    assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
    x, y = BIG_RED_CIRCLE.center
    assert tuple(s.image[y, x]) == vl.COLORS["red"]
    assert tuple(s.image[0, 63]) == vl.BACKGROUND


def test_scenes_are_deterministic_and_splits_differ():
    a, b = vl.make_scene(7, "train"), vl.make_scene(7, "train")
    assert np.array_equal(a.image, b.image) and a.captions == b.captions
    assert a.questions == b.questions
    val = [vl.make_scene(i, "val") for i in range(5)]
    assert not all(np.array_equal(v.image, vl.make_scene(i, "train").image) for i, v in enumerate(val))
    with pytest.raises(ValueError, match="multiple of 16"):
        vl.SceneConfig(image_size=50)


# ----------------------------------------------------------------------------- COCO / VQA files


def test_write_dataset_round_trips_through_coco_and_vqa_loaders(tmp_path):
    out = vl.write_dataset(vl.WriteConfig(out=tmp_path / "ds", num_scenes=4, split="val"))
    caps = coco.load_coco_captions(out / "captions.json", out / "images")
    assert [c.image_id for c in caps] == [0, 1, 2, 3]
    scene = vl.make_scene(2, "val")
    assert caps[2].captions == scene.captions
    assert np.array_equal(caps[2].pixels(64), scene.image)  # PNG is lossless
    qs = coco.load_vqa(out / "vqa_questions.json", out / "vqa_annotations.json", out / "images")
    assert len(qs) == sum(len(vl.make_scene(i, "val").questions) for i in range(4))
    q = [q for q in qs if q.image_id == 2][0]
    assert q.answers == [q.multiple_choice_answer] * 10
    assert (q.question, q.multiple_choice_answer) == (scene.questions[0].question, scene.questions[0].answer)


def test_coco_naming_convention_and_bad_files(tmp_path):
    from PIL import Image

    images = tmp_path / "val2014"
    images.mkdir()
    Image.new("RGB", (100, 60), (0, 255, 0)).save(images / "COCO_val2014_000000000042.jpg")
    (tmp_path / "caps.json").write_text(json.dumps({
        "images": [{"id": 42, "width": 100, "height": 60}],
        "annotations": [{"id": 1, "image_id": 42, "caption": "A green field. "},
                        {"id": 2, "image_id": 42, "caption": "grass"}]}))
    (ex,) = coco.load_coco_captions(tmp_path / "caps.json", images)
    assert ex.captions == ["A green field.", "grass"]
    px = ex.pixels(32)  # 60x60 centre crop, resized to 32x32
    assert px.shape == (32, 32, 3) and abs(int(px[16, 16, 1]) - 255) < 3
    (tmp_path / "q.json").write_text(json.dumps(
        {"questions": [{"image_id": 42, "question": "What color?", "question_id": 420}]}))
    (tmp_path / "a.json").write_text(json.dumps({"annotations": [{
        "question_id": 420, "image_id": 42, "multiple_choice_answer": "green",
        "answers": [{"answer": a, "answer_id": i} for i, a in enumerate(["green"] * 9 + ["lime"])]}]}))
    (q,) = coco.load_vqa(tmp_path / "q.json", tmp_path / "a.json", images)
    assert q.answers.count("green") == 9 and q.multiple_choice_answer == "green"
    (unlabelled,) = coco.load_vqa(tmp_path / "q.json", None, images)
    assert unlabelled.answers == []
    with pytest.raises(ValueError, match="'annotations'"):
        coco.load_coco_captions(tmp_path / "q.json", images)  # a questions file, not captions
    (tmp_path / "caps2.json").write_text(json.dumps({"annotations": [{"image_id": 7, "caption": "x"}]}))
    with pytest.raises(FileNotFoundError, match="image_id=7"):
        coco.load_coco_captions(tmp_path / "caps2.json", images)


def test_unreadable_image_raises(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        coco.load_image(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        coco.load_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="multiple of 16"):
        coco.load_image(bad, image_size=30)


# ----------------------------------------------------------------------------- text corpus


def test_text_corpus_split_is_by_unit_and_deterministic(tmp_path):
    for i in range(40):
        (tmp_path / f"doc{i:02d}.txt").write_text(f"Document number {i} is about the standard library. " * 3)
    a = tc.load_corpus(str(tmp_path), held_out_fraction=0.25)
    b = tc.load_corpus(str(tmp_path), held_out_fraction=0.25)
    assert [d.name for d in a.held_out] == [d.name for d in b.held_out]
    assert len(a.train) + len(a.held_out) == 40
    assert {d.unit for d in a.train}.isdisjoint({d.unit for d in a.held_out})
    assert all(tc.is_held_out(d.unit, 0.25) for d in a.held_out)
    # The split of one file does not depend on which other files were loaded.
    few = tc.load_corpus(str(tmp_path), held_out_fraction=0.25, max_units=30)
    assert {d.name for d in few.held_out} <= {d.name for d in a.held_out}


def test_stdlib_corpus_has_both_splits():
    c = tc.load_corpus("stdlib", max_units=120)
    assert c.train and c.held_out
    assert all(len(d.text) >= tc.MIN_CHARS for d in c.train)
    assert {d.unit for d in c.train}.isdisjoint({d.unit for d in c.held_out})
    with pytest.raises(ValueError, match="held_out_fraction"):
        tc.load_corpus("stdlib", held_out_fraction=1.5)


# ----------------------------------------------------------------------------- batch sources


def test_caption_sequence_layout_and_loss_on_text_only():
    from gato.multimodal import caption_ids, caption_sequence

    image = vl.make_scene(0).image
    ids = caption_ids("a red circle")  # pieces + </s>
    assert ids[-1] == TEXT_EOS
    k = len(ids)
    b = seq.collate([caption_sequence([(image, ids)], 64)], 64)
    assert b.is_patch[0, :16].all() and not b.is_patch[0, 16:].any()
    assert b.tokens[0, 16:16 + k].tolist() == ids.tolist()
    assert (b.tokens[0, 16 + k:] == PAD).all()
    assert b.local_positions[0, :16].tolist() == list(range(16))
    assert (b.local_positions[0, 16:] == -1).all()
    # The last patch predicts the first caption token; the token before </s> predicts </s>.
    expect = np.zeros(64, bool)
    expect[15:15 + k] = True
    assert b.loss_mask[0].numpy().tolist() == expect.tolist()
    assert b.targets[0, 15:15 + k].tolist() == ids.tolist()


def test_at_most_five_pairs_and_whole_pairs_only():
    from gato.multimodal import CaptionSource, synthetic_caption_source

    rng = np.random.default_rng(0)
    big = synthetic_caption_source(seq_len=1024, num_scenes=20).batch(2, rng)
    assert big.is_patch.sum(1).tolist() == [80, 80]  # 5 pairs x 16 patches
    small = synthetic_caption_source(seq_len=64, num_scenes=20).batch(2, rng)
    assert small.is_patch.sum(1).tolist() == [16, 16]
    with pytest.raises(ValueError, match="seq_len=20"):
        synthetic_caption_source(seq_len=20, num_scenes=5).batch(1, rng)
    with pytest.raises(ValueError, match="no examples"):
        CaptionSource([], 64)


def test_vqa_sequence_learns_the_answer_only():
    from gato.multimodal import answer_ids, question_ids, vqa_sequence

    image = vl.make_scene(0).image
    q, a = question_ids("what color is the square?"), answer_ids("yellow")
    b = seq.collate([vqa_sequence([(image, q, a)], 64)], 64)
    nq = len(q)
    assert b.tokens[0, :nq].tolist() == q.tolist()
    assert b.local_positions[0, :nq + 16].tolist() == list(range(nq + 16))
    assert b.is_patch[0, nq:nq + 16].all()
    assert b.loss_mask[0].nonzero().flatten().tolist() == list(range(nq + 15, nq + 15 + len(a)))
    with pytest.raises(ValueError, match="shorter question"):
        vqa_sequence([(image, np.ones(60, np.int64), a)], 64)


def test_text_source_and_trainer_mixture_with_domain_weights():
    from gato.data import Mixture
    from gato.multimodal import TextSource, synthetic_caption_source, synthetic_vqa_source, token_stream

    stream = token_stream(["first document here.", "second one, a bit longer than the first."])
    assert (stream == TEXT_EOS).sum() == 2
    text = TextSource(stream, seq_len=8)
    b = text.batch(3, np.random.default_rng(0))
    assert b.loss_mask.sum(1).tolist() == [7, 7, 7]
    assert (b.targets[:, :7] == b.tokens[:, 1:]).all()
    sources = [synthetic_caption_source(64, 10), synthetic_vqa_source(64, 10), text]
    mix = Mixture(sources, 64, {"vqa": 0.0}, seed=0)
    batch = mix.next_batch(16)
    assert set(batch.domains) == {"captioning", "text"}
    assert batch.tokens.shape == (16, 64)
    with pytest.raises(ValueError, match="not longer than"):
        TextSource(stream[:5], seq_len=8)


# ----------------------------------------------------------------------------- decoding and CLI


def _tiny_config(**changes):
    """gato-tiny with a 64-slot context (the tests' lengths are computed for 64)."""
    return tiny_config(**{"max_len": 64, **changes})


def _tiny_model(seed=0):
    return tiny_model(seed, max_len=64).eval()


def test_greedy_generation_with_kv_cache_equals_full_forward():
    from gato.language import caption_prompt, greedy_generate, text_prompt

    model = _tiny_model()
    prompts = [caption_prompt(vl.make_scene(0).image), text_prompt("Return the value of")]
    got = greedy_generate(model, prompts, max_new_tokens=6, eos=-1)
    for prompt, ids in zip(prompts, got):
        cur, want = prompt, []
        with torch.no_grad():
            for _ in range(6):
                h = model.trunk(model.embed(seq.collate([cur])))
                t = int(model.logits(h[0, -1], vocab_range=(0, 32000)).argmax())
                want.append(t)
                cur = seq.SlotArrays.concat([cur, seq.segments_to_slots([np.array([t])])])
        assert ids.tolist() == want


def test_tiny_model_learns_to_caption_and_answer():
    """Overfit one caption and one question: greedy decoding must then reproduce both texts."""
    from gato.language import answer_questions, caption_images
    from gato.multimodal import answer_ids, caption_ids, caption_sequence, question_ids, vqa_sequence

    model = _tiny_model()
    scene = vl.make_scene(2)  # one blue triangle
    caption, q = scene.captions[2], "what color is the triangle?"
    batch = seq.collate([caption_sequence([(scene.image, caption_ids(caption))], 64),
                         vqa_sequence([(scene.image, question_ids(q), answer_ids("blue"))], 64)], 64)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for step in range(300):
        model.train()
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 9:
            model.eval()  # eval mode: the patch position bins are the intervals' means
            with torch.no_grad():
                hidden = model.trunk(model.embed(batch))[batch.loss_mask]  # (N, D)
                if (model.logits(hidden).argmax(-1) == batch.targets[batch.loss_mask]).all():
                    break
    model.eval()
    assert caption_images(model, [scene.image]) == [caption]
    assert answer_questions(model, [scene.image], [q]) == ["blue"]


def _save(tmp_path, data_specs):
    from gato import checkpoint
    from gato.model import GatoModel

    config = _tiny_config()
    model = GatoModel(config)
    run = tmp_path / "run"
    checkpoint.save(run, model, config, step=1, train_config={"data": data_specs})
    return run


def test_cli_smoke_and_bad_inputs(tmp_path, capsys):
    from PIL import Image

    from gato.language import NoTextVocabulary, ask_main, caption_main, check_text_vocabulary, complete_main

    run = _save(tmp_path, ["gato.multimodal:vl_text_sources"])
    img = tmp_path / "scene.png"
    Image.fromarray(vl.make_scene(0).image).save(img)
    assert caption_main([str(img), "--checkpoint", str(run), "--max-new-tokens", "3"]) == 0
    assert ask_main([str(img), "what color is the square?", "--checkpoint", str(run),
                     "--max-new-tokens", "2"]) == 0
    assert complete_main(["Return the", "--checkpoint", str(run), "--max-new-tokens", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3

    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        caption_main([str(bad), "--checkpoint", str(run)])
    long_q = "what " * 60 + "?"  # 61 tokens + 16 patches > the 64-slot context
    with pytest.raises(ValueError, match="context is 64 slots"):
        ask_main([str(img), long_q, "--checkpoint", str(run)])
    with pytest.raises(ValueError, match="context is 64 slots"):
        complete_main(["word " * 80, "--checkpoint", str(run)])

    control_only = _save(tmp_path / "c", ["data/babyai-goto-red-ball"])
    with pytest.raises(NoTextVocabulary, match="without any text domain"):
        caption_main([str(img), "--checkpoint", str(control_only)])
    with pytest.raises(NoTextVocabulary, match="vocab_size=1000"):
        check_text_vocabulary(_tiny_config(vocab_size=1000), None, "x")


def test_evaluation_dicts_for_the_report():
    from eval.language import (LanguageEvalConfig, blind_baselines, evaluate_language, evaluate_perplexity,
                               report_section)

    model = _tiny_model()
    metrics = evaluate_language(model, LanguageEvalConfig(num_scenes=3, questions_per_scene=1,
                                                          domains=("captioning", "vqa"),
                                                          blind_baselines=False))
    assert set(metrics["captioning"]) >= {"bleu4", "cider", "captions", "samples"}
    assert metrics["vqa"]["vqa_questions"] == 3.0
    # An untrained model's distribution over 34,050 ids is almost uniform.
    ppl = evaluate_perplexity(model, ["The quick brown fox jumps over the lazy dog. " * 20], seq_len=64)
    assert 25_000 < ppl["text_perplexity"] < 45_000
    blind = blind_baselines(num_scenes=3, questions_per_scene=1, train_scenes=30)
    assert blind["vqa"]["vqa_questions"] == 3.0 and 0.0 <= blind["vqa"]["vqa_accuracy"] <= 1.0
    title, body = report_section({**metrics, "text": {**ppl, "source": "toy"}, "blind": blind})
    assert title == "Vision-language and text" and "BLEU-4" in body and "perplexity" in body
    assert "image-blind baseline" in body
