from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from medkit.transforms import ToGrey, ToGreyd


@pytest.mark.parametrize(
    "pixel,expected",
    [
        ([255.0, 0.0, 0.0], 0.299 * 255),
        ([0.0, 255.0, 0.0], 0.587 * 255),
        ([0.0, 0.0, 255.0], 0.114 * 255),
        ([10.0, 10.0, 10.0, 255.0], 10.0),  # alpha is dropped
        ([42.0], 42.0),
        ([42.0, 255.0], 42.0),  # grey + alpha
    ],
    ids=["red", "green", "blue", "rgba-grey", "grey", "grey-alpha"],
)
def test_to_grey_values(pixel, expected):
    img = torch.tensor(pixel).view(-1, 1, 1).expand(-1, 2, 3).clone()
    out = ToGrey()(img)
    assert out.shape == (1, 2, 3)
    torch.testing.assert_close(out, torch.full((1, 2, 3), expected), atol=1e-3, rtol=0)


def test_to_grey_keeps_metadata_and_dict_version():
    img = MetaTensor(torch.rand(4, 5, 6), meta={"filename_or_obj": "x.png"})
    out = ToGreyd(keys="image")({"image": img})["image"]
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "x.png"


def test_to_grey_rejects_many_channels():
    with pytest.raises(ValueError, match=r"got shape \(5, 2, 2\)"):
        ToGrey()(torch.zeros(5, 2, 2))
