"""OneHotDNA(d) and ReverseComplement(d)."""

from __future__ import annotations

import pytest
import torch

from medkit.transforms import OneHotDNA, OneHotDNAd, ReverseComplement, ReverseComplementd

A, C, G, T, N = [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0], [0.0, 0, 0, 0]


@pytest.mark.parametrize(
    "sequence, expected",
    [("ACGTN", [A, C, G, T, N]), ("acgtn", [A, C, G, T, N]), ("NNA", [N, N, A]), ("G", [G])],
    ids=["upper", "lower", "leading-n", "single"],
)
def test_one_hot_values(sequence, expected):
    out = OneHotDNA()(sequence)
    assert out.dtype == torch.float32 and out.shape == (len(sequence), 4)
    torch.testing.assert_close(out, torch.tensor(expected))


def test_one_hot_channel_first_is_the_transpose():
    seq = "ACGTTGCAN"
    torch.testing.assert_close(OneHotDNA(channel_first=True)(seq), OneHotDNA()(seq).T)
    assert OneHotDNA(channel_first=True)(seq).shape == (4, 9)


@pytest.mark.parametrize("sequence, pos, char", [("ACGX", 3, "X"), ("U", 0, "U"), ("AC-GT", 2, "-")], ids=str)
def test_one_hot_rejects_other_characters(sequence, pos, char):
    with pytest.raises(ValueError, match=f"invalid DNA character {char!r} at position {pos}"):
        OneHotDNA()(sequence)


def test_one_hot_dict_writes_output_key_and_length_and_names_the_record():
    out = OneHotDNAd(keys="sequence", output_keys="image", length_key="length")({"id": "r1", "sequence": "ACGT"})
    assert out["sequence"] == "ACGT" and out["image"].shape == (4, 4) and out["length"] == 4
    with pytest.raises(ValueError, match="record 'bad7'"):
        OneHotDNAd(keys="sequence")({"id": "bad7", "sequence": "ACZ"})


@pytest.mark.parametrize("channel_first", [False, True], ids=["L4", "4L"])
def test_reverse_complement_of_one_hot_matches_the_string(channel_first):
    seq = "AACGTNGGC"
    rc = ReverseComplement(channel_first=channel_first)
    assert rc(seq) == "GCCNACGTT"
    enc = OneHotDNA(channel_first=channel_first)
    torch.testing.assert_close(rc(enc(seq)), enc(rc(seq)))


def test_reverse_complementd_is_random_and_reproducible():
    data = {"image": OneHotDNA()("AACG"), "label": 1}
    flipped = OneHotDNA()("CGTT")

    def draws(seed):
        t = ReverseComplementd(keys="image", prob=0.5).set_random_state(seed)
        return [bool(torch.equal(t(data)["image"], flipped)) for _ in range(20)]

    assert draws(3) == draws(3)
    assert 0 < sum(draws(3)) < 20
    assert torch.equal(ReverseComplementd(keys="image", prob=1.0)(data)["image"], flipped)
    assert torch.equal(ReverseComplementd(keys="image", prob=0.0)(data)["image"], data["image"])
    assert ReverseComplementd(keys="image", prob=1.0)(data)["label"] == 1
