"""gato.tokenizer: hand-computed token ids (docs/spec.md "Values to tokens", "Images")."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gato import tokenizer as tk

HALF_BIN = 1.0 / 1024  # a bin is 2/1024 wide


def test_vocabulary_constants():
    assert (tk.TEXT_VOCAB, tk.NUM_BINS, tk.CONTINUOUS_OFFSET) == (32000, 1024, 32000)
    assert (tk.DISCRETE_OFFSET, tk.SEPARATOR, tk.PAD) == (33024, 34048, 34049)


def test_mu_law_hand_values():
    # F(1) = log(1*100 + 1) / log(256*100 + 1) = log(101) / log(25601) = 4.61512 / 10.15040
    assert float(tk.mu_law(np.array(1.0))) == pytest.approx(0.4546743545, abs=1e-9)
    assert float(tk.mu_law(np.array(-1.0))) == pytest.approx(-0.4546743545, abs=1e-9)
    assert float(tk.mu_law(np.array(0.0))) == 0.0
    # F(M) = log(25601) / log(25601) = 1
    assert float(tk.mu_law(np.array(256.0))) == pytest.approx(1.0, abs=1e-12)
    # F(10) = log(1001) / log(25601) = 6.90875 / 10.15040
    assert float(tk.mu_law(np.array(10.0))) == pytest.approx(math.log(1001) / math.log(25601), abs=1e-12)


def test_inverse_mu_law_inverts():
    x = np.array([-256.0, -3.0, -0.01, 0.0, 0.5, 7.0, 256.0])
    np.testing.assert_allclose(tk.inverse_mu_law(tk.mu_law(x)), x, rtol=1e-10, atol=1e-12)


def test_spec_worked_examples_observations():
    # 0 -> F=0 -> floor(1 * 512) = 512; 1 -> floor(1.4546743 * 512) = floor(744.79) = 744;
    # -1 -> floor(0.5453256 * 512) = floor(279.21) = 279
    tokens = tk.encode_continuous(np.array([0.0, 1.0, -1.0]), mu_law=True)
    assert tokens.tolist() == [32512, 32744, 32279]
    assert tokens.dtype == np.int64


def test_more_observation_values():
    # 0.5 -> F = log(51)/log(25601) = 0.3873572 -> floor(1.3873572 * 512) = floor(710.33) = 710
    # -0.5 -> floor(0.6126428 * 512) = floor(313.67) = 313
    # 10 -> F = 0.6806396 -> floor(1.6806396 * 512) = floor(860.49) = 860
    # 256 -> F = 1 -> floor(2 * 512) = 1024 -> min(., 1023); 1e6 -> clipped to 1 -> 1023
    x = np.array([0.5, -0.5, 10.0, 256.0, 1e6, -1e6])
    assert tk.encode_continuous(x, mu_law=True).tolist() == [32710, 32313, 32860, 33023, 33023, 32000]


def test_spec_worked_examples_actions():
    # binned directly: -1 -> 0; 0 -> 512; 1 -> min(1024, 1023) = 1023
    assert tk.encode_continuous(np.array([-1.0, 0.0, 1.0]), mu_law=False).tolist() == [32000, 32512, 33023]
    # 0.5 -> floor(1.5 * 512) = 768; -0.5 -> 256; 0.999 -> floor(1023.49) = 1023; 2.0 clipped -> 1023
    x = np.array([0.5, -0.5, 0.999, 2.0, -3.0])
    assert tk.encode_continuous(x, mu_law=False).tolist() == [32768, 32256, 33023, 33023, 32000]


def test_encode_continuous_keeps_shape():
    assert tk.encode_continuous(np.zeros((3, 2, 4)), mu_law=True).shape == (3, 2, 4)
    assert tk.encode_continuous(np.array(0.0), mu_law=True).shape == ()


def test_decode_continuous_gives_bin_centres():
    # bin b has centre (b + 0.5) / 1024 * 2 - 1: b=0 -> -1 + 1/1024; b=512 -> 1/1024; b=1023 -> 1 - 1/1024
    out = tk.decode_continuous(np.array([32000, 32512, 33023]))
    assert out.tolist() == [-1 + 1 / 1024, 1 / 1024, 1 - 1 / 1024]
    assert out.dtype == np.float32


@pytest.mark.parametrize("bad", [31999, 33024, tk.SEPARATOR, 5])
def test_decode_continuous_rejects_other_ids(bad):
    with pytest.raises(ValueError, match=str(bad)):
        tk.decode_continuous(np.array([32500, bad]))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_names_task_and_key(value):
    with pytest.raises(ValueError) as e:
        tk.encode_continuous(np.array([0.0, value]), mu_law=True, task_id="dmc-cheetah-run", key="continuous")
    msg = str(e.value)
    assert "dmc-cheetah-run" in msg and "'continuous'" in msg and str(value) in msg


def test_discrete_values():
    assert tk.encode_discrete(np.array([0, 1, 1023])).tolist() == [33024, 33025, 34047]
    assert tk.encode_discrete(np.array([2.0, 3.0])).tolist() == [33026, 33027]  # whole floats are fine
    assert tk.decode_discrete(np.array([33024, 34047])).tolist() == [0, 1023]


@pytest.mark.parametrize("bad", [-1, 1024, 5000])
def test_discrete_out_of_range_is_an_error(bad):
    with pytest.raises(ValueError, match=rf"discrete value {bad} is outside \[0, 1024\).*babyai-x.*'discrete'"):
        tk.encode_discrete(np.array([3, bad]), task_id="babyai-x", key="discrete")


def test_discrete_rejects_fractions_and_nan():
    with pytest.raises(ValueError, match="whole number"):
        tk.encode_discrete(np.array([1.5]))
    with pytest.raises(ValueError, match="non-finite.*'discrete'"):
        tk.encode_discrete(np.array([np.nan]), key="discrete")


@pytest.mark.parametrize("bad", [33023, 34048, 0])
def test_decode_discrete_rejects_other_ids(bad):
    with pytest.raises(ValueError, match="not a discrete token"):
        tk.decode_discrete(np.array([bad]))


def test_text_round_trip():
    ids = tk.encode_text("go to the red ball")
    assert ids.dtype == np.int64
    assert ids.tolist() == [576, 298, 272, 2760, 4374]  # pieces '▁go', '▁to', '▁the', '▁red', '▁ball'
    assert tk.decode_text(ids) == "go to the red ball"
    assert tk.encode_text("go", bos=True, eos=True).tolist() == [tk.TEXT_BOS, 576, tk.TEXT_EOS]
    ids[0] = 7  # returned arrays are the caller's own, never the cache's
    assert tk.encode_text("go to the red ball")[0] == 576


def test_text_ids_are_below_32000_and_decode_checks():
    ids = tk.encode_text("Ünïcode ✓ and numbers 12345")
    assert ((ids >= 0) & (ids < 32000)).all()
    with pytest.raises(ValueError, match="not a text token"):
        tk.decode_text(np.array([576, 32000]))
    with pytest.raises(TypeError):
        tk.encode_text(["not", "a", "str"])


def test_image_to_patches_order_and_scale():
    # 32 x 16 image: 2 patch rows, 1 patch column; top patch all 0, bottom patch all 255
    img = np.zeros((32, 16, 3), np.uint8)
    img[16:] = 255
    p = tk.image_to_patches(img)
    assert p.shape == (2, 768) and p.dtype == np.float32
    # 0 -> (0/255*2 - 1)/4 = -0.25 ; 255 -> (2 - 1)/4 = 0.25 ; 51 -> (0.4 - 1)/4 = -0.15
    assert (p[0] == -0.25).all() and (p[1] == 0.25).all()
    assert tk.image_to_patches(np.full((16, 16, 3), 51, np.uint8))[0, 0] == pytest.approx(-0.15, abs=1e-7)


def test_image_to_patches_raster_order_and_flattening():
    # 32 x 32: patches in raster order (0,0), (0,1), (1,0), (1,1); each flattened over (16, 16, C)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    raw = tk.patchify(img)
    assert raw.shape == (4, 768)
    np.testing.assert_array_equal(raw[1], img[0:16, 16:32].reshape(-1))
    np.testing.assert_array_equal(raw[2], img[16:32, 0:16].reshape(-1))
    assert raw[3][(5 * 16 + 7) * 3 + 2] == img[16 + 5, 16 + 7, 2]  # pixel (y=5, x=7), channel 2
    np.testing.assert_allclose(tk.image_to_patches(img), (raw / 255 * 2 - 1) / 4, atol=1e-7)
    assert tk.image_to_patches(np.zeros((16, 32, 1), np.uint8)).shape == (2, 256)  # 16*16*C


def test_image_errors_say_what_was_expected():
    with pytest.raises(TypeError, match="uint8"):
        tk.image_to_patches(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, C\).*\(16, 16\)"):
        tk.image_to_patches(np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match="multiples of 16, got 20x16"):
        tk.image_to_patches(np.zeros((20, 16, 3), np.uint8), task_id="atari-pong", key="image")
    with pytest.raises(TypeError, match="numpy"):
        tk.image_to_patches([[0]])


def test_patch_positions_by_hand():
    # 64 x 64: 4 x 4 patches, each side interval is 16/64 = 1/4 of the image -> 32 bins
    pos = tk.patch_positions(64, 64)
    assert pos.shape == (16, 4)
    assert pos[0].tolist() == [0, 32, 0, 32]
    assert pos[1].tolist() == [0, 32, 32, 64]  # raster: same row, next column
    assert pos[4].tolist() == [32, 64, 0, 32]
    assert pos[15].tolist() == [96, 128, 96, 128]
    # 80 x 80 (Atari): edges floor(k * 16 / 80 * 128) = floor(25.6 k) = 0, 25, 51, 76, 102, 128
    rows = tk.patch_positions(80, 80)[::5, :2]
    assert rows.tolist() == [[0, 25], [25, 51], [51, 76], [76, 102], [102, 128]]
    # 16 x 48: one row covering everything; columns floor(128/3)=42, floor(256/3)=85
    assert tk.patch_positions(16, 48).tolist() == [[0, 128, 0, 42], [0, 128, 42, 85], [0, 128, 85, 128]]
    with pytest.raises(ValueError, match="multiples of 16"):
        tk.patch_positions(20, 16)


@settings(max_examples=300, deadline=None)
@given(st.floats(-1.0, 1.0, allow_nan=False))
def test_property_action_round_trip_within_half_a_bin(x):
    back = float(tk.decode_continuous(tk.encode_continuous(np.array(x), mu_law=False)))
    assert abs(back - x) <= HALF_BIN


@settings(max_examples=300, deadline=None)
@given(st.floats(-256.0, 256.0, allow_nan=False))
def test_property_observation_round_trip_within_half_a_bin(x):
    token = tk.encode_continuous(np.array(x), mu_law=True)
    centre = float(tk.decode_continuous(token))
    y = float(tk.mu_law(np.array(x)))
    assert abs(centre - y) <= HALF_BIN  # in mu-law space
    # and x lies in the bin's interval mapped back through the mu-law inverse
    lo, hi = tk.inverse_mu_law(np.array([centre - HALF_BIN, centre + HALF_BIN]))
    assert lo - 1e-9 <= x <= hi + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 1023), min_size=1, max_size=20))
def test_property_discrete_round_trip(values):
    assert tk.decode_discrete(tk.encode_discrete(np.array(values))).tolist() == values


def test_binning_is_exact_next_to_a_bin_edge():
    # -1e-19 + 1 rounds to 1.0 in float64, but the value lies in bin 511, [-1/512, 0)
    assert tk.encode_continuous(np.array([-1e-19, 0.0, 1e-19]), mu_law=False).tolist() == [32511, 32512, 32512]
    # the edge of bin 768 is 768 / 512 - 1 = 0.5 exactly; just below it is bin 767
    assert tk.encode_continuous(np.array([np.nextafter(0.5, 0), 0.5]), mu_law=False).tolist() == [32767, 32768]


# ----------------------------------------------------------------------------- location tokens


def test_location_ids_end_the_vocabulary():
    from gato.configs import VOCAB_SIZE, get_config

    assert (tk.LOCATION_OFFSET, tk.NUM_LOCATION_BINS, tk.VOCAB_SIZE) == (34050, 128, 34178)
    assert tk.LOCATION_OFFSET == tk.PAD + 1  # appended after padding: no earlier id moved
    assert VOCAB_SIZE == tk.VOCAB_SIZE == get_config("gato-tiny").vocab_size
    assert tk.encode_location(np.array([0.0, 0.5, 1.0])).tolist() == [34050, 34114, 34177]
    assert tk.decode_location(np.array([34050, 34177])).tolist() == [0.5 / 128, 127.5 / 128]
    with pytest.raises(ValueError, match="outside"):
        tk.encode_location(np.array([1.01]))
    with pytest.raises(ValueError, match="non-finite"):
        tk.encode_location(np.array([np.nan]))
    with pytest.raises(ValueError, match="not a location token"):
        tk.decode_location(np.array([tk.PAD]))
    with pytest.raises(ValueError, match="4 location tokens"):
        tk.decode_box(np.array([34050, 34051, 34052]), width=64, height=64)


@settings(max_examples=300, deadline=None)
@given(st.integers(16, 640).map(lambda v: v // 16 * 16), st.integers(16, 640).map(lambda v: v // 16 * 16),
       st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4))
def test_location_tokens_round_trip_boxes_within_half_a_bin(width, height, f):
    x0, x1 = sorted(f[:2])
    y0, y1 = sorted(f[2:])
    box = np.array([x0 * width, y0 * height, x1 * width, y1 * height])
    ids = tk.encode_box(box, width=width, height=height)
    assert ((ids >= tk.LOCATION_OFFSET) & (ids < tk.VOCAB_SIZE)).all()
    back = tk.decode_box(ids, width=width, height=height)
    half_bin = np.array([width, height, width, height]) / tk.NUM_LOCATION_BINS / 2
    assert (np.abs(back - box) <= half_bin + 1e-9).all()
    assert back[0] <= back[2] and back[1] <= back[3]


def test_decode_box_orders_swapped_corners():
    ids = tk.encode_box((40, 50, 10, 20), width=64, height=64)  # corners given the wrong way round
    x0, y0, x1, y1 = tk.decode_box(ids, width=64, height=64)
    assert x0 < x1 and y0 < y1
