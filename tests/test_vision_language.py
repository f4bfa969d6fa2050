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
    # An untrained model's distribution over 34,178 ids is almost uniform.
    ppl = evaluate_perplexity(model, ["The quick brown fox jumps over the lazy dog. " * 20], seq_len=64)
    assert 25_000 < ppl["text_perplexity"] < 45_000
    blind = blind_baselines(num_scenes=3, questions_per_scene=1, train_scenes=30)
    assert blind["vqa"]["vqa_questions"] == 3.0 and 0.0 <= blind["vqa"]["vqa_accuracy"] <= 1.0
    title, body = report_section({**metrics, "text": {**ppl, "source": "toy"}, "blind": blind})
    assert title == "Vision-language and text" and "BLEU-4" in body and "perplexity" in body
    assert "image-blind baseline" in body


# ----------------------------------------------------------------------------- instruction tasks (OFA)


@pytest.mark.parametrize("shape", vl.SHAPES)
@pytest.mark.parametrize("size", vl.SIZES)
def test_a_shape_fills_exactly_its_box(shape, size):
    o = obj(shape, "red", size, (1, 1))
    image = vl.render([o])
    ys, xs = np.nonzero((image != np.array(vl.BACKGROUND)).any(-1))
    assert (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) == o.box


def test_referring_expressions_pick_out_one_shape():
    objs = [BIG_RED_CIRCLE, SMALL_RED_CIRCLE, BLUE_SQUARE]
    assert vl.referring_expressions(SMALL_RED_CIRCLE, objs) == ["small circle", "small red circle"]
    assert vl.referring_expressions(BLUE_SQUARE, objs)[:3] == ["square", "blue object", "blue square"]
    twins = [obj("circle", "red", "small", (0, 0)), obj("circle", "red", "small", (2, 2))]
    assert vl.referring_expressions(twins[0], twins) == []
    for i in range(30):
        s = vl.make_scene(i, "val")
        for o in s.objects:
            for phrase in vl.referring_expressions(o, s.objects):
                words = phrase.split()
                attrs = {("shape" if w in vl.SHAPES else "color" if w in vl.COLORS else "size"): w
                         for w in words if w != "object"}
                assert vl.matching(s.objects, **attrs) == [o]


def test_matching_negatives_are_other_scenes_or_one_change_away():
    rng = np.random.default_rng(0)
    answers, kinds = [], []
    for i in range(80):
        s = vl.make_scene(i, "val")
        caption, answer, kind = vl.matching_pair(s, rng)
        answers.append(answer)
        kinds.append(kind)
        assert (caption in s.captions) == (answer == "yes") == (kind == "true")
        altered = vl.altered_objects(s.objects, np.random.default_rng(i))
        assert len(altered) == len(s.objects)
        changed = set(map(repr, altered)) ^ set(map(repr, s.objects))
        assert len(changed) == 2  # one object out, its altered copy in
        assert len({o.cell for o in altered}) == len(altered)  # still one shape per cell
    assert 28 <= answers.count("yes") <= 52 and set(kinds) == set(vl.MATCHING_KINDS)


def test_instruction_formats_tokenize_as_documented():
    from gato.multimodal import (CAPTION_INSTRUCTION, INSTRUCTION_DOMAINS, InstructionSource, grounding_instruction,
                                 instruction_example, matching_instruction, vqa_slots)
    from gato.tokenizer import LOCATION_OFFSET, VOCAB_SIZE, encode_box, encode_text

    assert CAPTION_INSTRUCTION == "what does the image describe?"
    assert matching_instruction("a red circle") == 'does the image describe "a red circle"?'
    assert grounding_instruction("red circle") == 'which region does the text "red circle" describe?'
    assert INSTRUCTION_DOMAINS == ("instruct-caption", "vqa", "matching", "grounding")
    scene = vl.scene_from_objects([BIG_RED_CIRCLE, BLUE_SQUARE])
    rng = np.random.default_rng(0)
    for task in INSTRUCTION_DOMAINS:
        instruction, answer = instruction_example(task, scene, rng)
        q = encode_text(instruction)
        s = seq.collate([vqa_slots(scene.image, q, answer, task)], 64)
        n = len(q)
        # [instruction: observation text, local 0..n-1, no loss][16 patches][answer </s>: the targets]
        assert s.tokens[0, :n].tolist() == q.tolist() and s.local_positions[0, :n].tolist() == list(range(n))
        assert s.is_patch[0, n:n + 16].all()
        assert s.tokens[0, n + 16:n + 16 + len(answer)].tolist() == answer.tolist() and answer[-1] == TEXT_EOS
        assert s.loss_mask[0].nonzero().flatten().tolist() == list(range(n + 15, n + 15 + len(answer)))
        if task == "grounding":
            assert instruction.startswith('which region does the text "') and len(answer) == 5
            phrase = instruction.split('"')[1]
            target = BIG_RED_CIRCLE if vl.referring_expressions(BIG_RED_CIRCLE, scene.objects).count(phrase) else BLUE_SQUARE
            assert answer[:4].tolist() == encode_box(target.box, width=64, height=64).tolist()
            assert ((answer[:4] >= LOCATION_OFFSET) & (answer[:4] < VOCAB_SIZE)).all()
        elif task == "matching":
            assert answer.tolist() in (encode_text("yes", eos=True).tolist(), encode_text("no", eos=True).tolist())
        elif task == "instruct-caption":
            assert instruction == CAPTION_INSTRUCTION and answer.tolist() == encode_text(scene.captions[0], eos=True).tolist()
    b = InstructionSource("grounding", 128, num_scenes=20).batch(4, rng)
    assert set(b.domains) == {"grounding"} and b.tokens.shape == (4, 128)
    loc = b.targets[b.loss_mask]
    assert ((loc >= LOCATION_OFFSET) & (loc < VOCAB_SIZE)).sum() == 4 * (loc == TEXT_EOS).sum()
    with pytest.raises(ValueError, match="unknown instruction task"):
        InstructionSource("segmentation", 64)


# ----------------------------------------------------------------------------- few-shot episodes (Flamingo)


def _names_of(ep):
    """name -> the set of real values it stands for, over the episode's shots and query."""
    seen: dict[str, set] = {}
    for p in ep.shots + [ep.query]:
        a, b = p.text.split()
        name, value = (a, p.obj.color) if ep.attribute == "color" else (b, p.obj.shape)
        other = b if ep.attribute == "color" else a
        assert other == (p.obj.shape if ep.attribute == "color" else p.obj.color)  # the other word is real
        seen.setdefault(name, set()).add(value)
    return seen


def test_few_shot_episodes_rename_consistently():
    mappings = []
    for i in range(40):
        ep = vl.few_shot_episode(i, "val", shots=8, ways=2)
        seen = _names_of(ep)
        # within an episode one name always means one value, and two names never share one
        assert all(len(v) == 1 for v in seen.values()) and len(seen) == 2
        assert {n: next(iter(v)) for n, v in seen.items()} == {n: v for v, n in ep.names.items()}
        assert set(ep.names.values()) <= set(vl.nonce_words("val"))
        assert ep.candidates[ep.answer] == ep.query.text and len(set(ep.candidates)) == 2
        for k in (2, 4, 8):  # each prefix of the shots shows every name equally often
            texts = [p.text for p in ep.shots[:k]]
            assert sorted(sum(n in t.split() for t in texts) for n in ep.names.values()) == [k // 2, k // 2]
        mappings.append(tuple(sorted(ep.names.items())))
    assert len(set(mappings)) == len(mappings)  # every episode names afresh
    assert {vl.few_shot_episode(i, "train").attribute for i in range(20)} == {"color", "shape"}
    a, b = vl.few_shot_episode(3, "val"), vl.few_shot_episode(3, "val")
    assert a.names == b.names and [p.text for p in a.shots] == [p.text for p in b.shots]
    assert not set(vl.nonce_words("train")) & set(vl.nonce_words("val"))
    assert not set(vl.nonce_words("val")) & set(vl.nonce_words("test"))
    assert not set(vl.nonce_words("train")) & (set(vl.COLORS) | set(vl.SHAPES))


def test_few_shot_source_interleaves_the_episode():
    from gato.multimodal import FewShotSource

    b = FewShotSource(256).batch(2, np.random.default_rng(0))
    assert b.domains == ["few-shot", "few-shot"]
    assert b.is_patch.sum(1).tolist() == [9 * 16, 9 * 16]  # 8 shots and the query
    text = ~b.is_patch & (b.tokens != PAD)
    assert (b.loss_mask[:, :-1] == text[:, 1:]).all()  # every text token is a target
    assert ((b.tokens == TEXT_EOS).sum(1) == 9).all()


# ----------------------------------------------------------------------------- gato ground, caption --shots, evaluation


def _save_config(tmp_path, data_specs, **changes):
    from gato import checkpoint
    from gato.model import GatoModel

    config = _tiny_config(**changes)
    run = tmp_path / "run"
    checkpoint.save(run, GatoModel(config), config, step=1, train_config={"data": data_specs})
    return run


def test_gato_ground_prints_a_legal_box_and_draws_it(tmp_path, capsys):
    from PIL import Image

    from gato import cli
    from gato.language import NoTextVocabulary, ground_main

    run = _save_config(tmp_path, ["gato.multimodal:instruct_sources"])
    img = tmp_path / "scene.png"
    Image.fromarray(vl.make_scene(0).image).save(img)
    assert cli.main(["ground", str(img), "red circle", "--checkpoint", str(run), "--draw", str(tmp_path / "b.png")]) == 0
    x0, y0, x1, y1 = (float(v) for v in capsys.readouterr().out.split())
    assert 0 <= x0 <= x1 <= 64 and 0 <= y0 <= y1 <= 64
    assert Image.open(tmp_path / "b.png").size == (64, 64)
    # a larger image: the box is in the file's pixels (the square crop scaled back)
    big = tmp_path / "big.png"
    Image.fromarray(vl.make_scene(0).image).resize((256, 128)).save(big)
    assert ground_main([str(big), "red circle", "--checkpoint", str(run)]) == 0
    x0, y0, x1, y1 = (float(v) for v in capsys.readouterr().out.split())
    assert 64 <= x0 <= x1 <= 192 and 0 <= y0 <= y1 <= 128
    assert cli.main(["ground", str(img), "red circle", "--checkpoint", str(run), "--draw", str(tmp_path / "b.png")]) == 1
    assert "--force" in capsys.readouterr().err  # an existing --draw file is kept
    old = _save_config(tmp_path / "old", ["gato.multimodal:instruct_sources"], vocab_size=34050)
    with pytest.raises(NoTextVocabulary, match=r"vocab_size=34050: it has no location tokens"):
        ground_main([str(img), "red circle", "--checkpoint", str(old)])
    plain = _save_config(tmp_path / "plain", ["gato.multimodal:vl_text_sources"])
    with pytest.raises(NoTextVocabulary, match="without \"grounding\""):
        ground_main([str(img), "red circle", "--checkpoint", str(plain)])


def test_resuming_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    from gato import checkpoint
    from gato.configs import VOCAB_SIZE

    run = _save_config(tmp_path, ["gato.multimodal:vl_text_sources"], vocab_size=34050)
    with pytest.raises(ValueError, match=rf"another vocabulary: vocab_size: checkpoint 34050 != requested {VOCAB_SIZE}"):
        checkpoint.load_weights(checkpoint.latest(run), tiny_model(max_len=64))
    loaded = checkpoint.load(run)  # its own config still loads it, for inference
    assert loaded.config.vocab_size == 34050 and loaded.model.token_embedding.num_embeddings == 34050


def test_caption_with_shots_from_a_folder(tmp_path, capsys):
    from gato.language import caption_main, load_shots

    run = _save_config(tmp_path, ["gato.multimodal:few_shot_sources"], max_len=256)
    ep = vl.few_shot_episode(0, "val", shots=4)
    vl.write_few_shot_episode(ep, tmp_path / "ep")
    shots = load_shots(tmp_path / "ep" / "shots")
    assert [t for _, t in shots] == [p.text for p in ep.shots]
    assert all(np.array_equal(im, p.image) for (im, _), p in zip(shots, ep.shots))
    assert caption_main(["--shots", str(tmp_path / "ep" / "shots"), str(tmp_path / "ep" / "query.png"),
                         "--checkpoint", str(run), "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.strip()
    (tmp_path / "ep" / "shots" / "001.txt").unlink()
    with pytest.raises(FileNotFoundError, match="001.txt"):
        caption_main(["--shots", str(tmp_path / "ep" / "shots"), str(tmp_path / "ep" / "query.png"),
                      "--checkpoint", str(run)])


def test_instruction_and_few_shot_evaluation_dicts():
    from eval import vl_tasks
    from eval.language import LanguageEvalConfig, evaluate_language, report_section

    model = tiny_model(0, max_len=256).eval()
    metrics = evaluate_language(model, LanguageEvalConfig(
        num_scenes=3, domains=("grounding", "matching", "few-shot", "instruct-caption"), few_shot_episodes=4,
        shot_counts=(0, 2), blind_baselines=True))
    assert metrics["grounding"]["grounding_examples"] == 3.0 and 0 <= metrics["grounding"]["mean_iou"] <= 1
    assert metrics["matching"]["matching_examples"] == 6.0
    assert 0 <= metrics["matching"]["matching_auc"] <= 1 or np.isnan(metrics["matching"]["matching_auc"])
    assert vl_tasks.roc_auc(np.array([0.9, 0.8, 0.2]), np.array([True, True, False])) == 1.0
    assert set(metrics["few-shot"]["shots"]) == {"0", "2"} and metrics["few-shot"]["chance"] == 0.5
    assert 0 <= metrics["blind"]["grounding"]["grounding_accuracy"] <= 1
    assert metrics["blind"]["matching"]["answer"] in ("yes", "no")
    _, body = report_section(metrics)
    assert "IoU >= 0.5" in body and "few-shot, 2 shots" in body and "image-text matching" in body
    assert float(vl_tasks.box_iou(np.array([0, 0, 10, 10]), np.array([0, 0, 10, 10]))) == 1.0
    assert float(vl_tasks.box_iou(np.array([0, 0, 10, 10]), np.array([10, 10, 20, 20]))) == 0.0


def test_blind_grounding_is_far_from_solving_the_task():
    from eval import vl_tasks

    exs = vl_tasks.grounding_examples(60, "val")
    blind = vl_tasks.blind_grounding(exs, train_scenes=300)
    assert len(exs) == 60 and blind["grounding_accuracy"] < 0.3


@pytest.mark.parametrize("source,domains", [("gato.multimodal:instruct_sources", ("grounding", "matching")),
                                            ("gato.multimodal:few_shot_sources", ("few-shot",))])
def test_instruction_and_few_shot_runs_train_resume_and_evaluate(tmp_path, source, domains):
    """The instruction and few-shot data train with `gato train`; a run killed in step 5 resumes to
    the weights of an uninterrupted run; the resumed checkpoint evaluates with `eval.language`."""
    from eval.language import LanguageEvalConfig, evaluate_language
    from gato import checkpoint
    from gato.train import train
    from tiny import killed_at_forward, tiny_train_config

    def run(out):
        return tiny_train_config(out, data=(source,), sequence_length=128)

    train(run(tmp_path / "straight"))
    with killed_at_forward(5), pytest.raises(KeyboardInterrupt):
        train(run(tmp_path / "killed"))
    train(run(tmp_path / "killed"))  # resumes from its step-4 checkpoint
    a, b = checkpoint.load(tmp_path / "straight"), checkpoint.load(tmp_path / "killed")
    assert b.step == 6
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), name
    metrics = evaluate_language(b.model.eval(), LanguageEvalConfig(
        num_scenes=2, domains=domains, few_shot_episodes=2, shot_counts=(0, 2)))
    assert set(metrics) >= set(domains)
