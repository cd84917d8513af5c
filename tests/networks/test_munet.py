from __future__ import annotations

import pytest
import torch

from medkit.networks import mUnet
from medkit.networks.munet import _restore, _SkipBlock

SMALL = {"channels": (4, 8), "depth": 8}


@pytest.mark.parametrize(
    "shape",
    [(2, 3, 64, 64), (1, 3, 37, 50), (1, 3, 1, 5), (2, 3, 8, 24)],
    ids=["shapes-64", "odd", "tiny", "multiple-of-8"],
)
@pytest.mark.parametrize("skip", [True, False], ids=["skips", "no-skips"])
def test_output_shape(shape, skip):
    net = mUnet(in_channels=3, out_channels=6, skip_connections=skip, **SMALL).eval()
    assert net(torch.randn(*shape)).shape == (shape[0], 6, *shape[2:])


def test_default_plan_on_the_shapes_input():
    """DLStudio's plan (64/128 channels, depth 16) on the shapes bundle's input: 3x64x64 -> 6 classes."""
    net = mUnet(in_channels=3, out_channels=6).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 64, 64)).shape == (2, 6, 64, 64)


def test_torchscript_matches_eager_on_an_odd_size():
    # scripting time grows with the number of blocks, so a small plan; the registry sweep scripts one too
    net = mUnet(out_channels=6, **SMALL).eval()
    x = torch.randn(2, 3, 37, 50)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(net)(x), net(x))


def test_parameter_count_of_dlstudios_plan():
    # by hand, widths 64/128, depth 16 (8 blocks per width and arm: 2 + 6), 3 inputs, 5 outputs as in DLStudio.
    # 3x3 conv c->c with bias 9c^2 + c, batch norm 2c: a width-keeping block 2(9c^2 + 3c), 74112 (c=64) and 295680
    # (c=128); resampling adds a 1x1 conv c^2 + c: 78272 and 312192; widening 64->128 one conv + norm 74112;
    # narrowing 128->64 73920; stem 9*3*64 + 64 = 1792; head 9*64*5 + 5 = 2885; four norms 2(64 + 128 + 128 + 64).
    down = 8 * 74112 + 78272 + 74112 + 8 * 295680 + 312192
    up = 312192 + 2 * 295680 + 73920 + 8 * 74112 + 78272  # the two shared 128-channel blocks are counted once
    expected = down + up + 1792 + 2885 + 2 * (64 + 128 + 128 + 64)
    assert expected == 5_076_997
    assert sum(p.numel() for p in mUnet(out_channels=5).parameters()) == expected


@pytest.mark.parametrize("depth, k, rest", [(16, 2, 6), (8, 1, 3), (2, 0, 1)], ids=["dlstudio", "8", "2"])
def test_blocks_per_stage_follow_depth(depth, k, rest):
    net = mUnet(channels=(4, 8), depth=depth)
    blocks = {name: sum(isinstance(m, _SkipBlock) for m in getattr(net, name)) for name in
              ("encoder1", "encoder2", "encoder3", "encoder4", "decoder3", "decoder2", "decoder1")}  # fmt: skip
    assert blocks == {
        "encoder1": k, "encoder2": 1 + rest, "encoder3": 1 + k, "encoder4": rest + 1,
        "decoder3": k, "decoder2": 1 + rest, "decoder1": 1 + k,
    }  # fmt: skip
    resampling = [
        m for m in net.modules() if isinstance(m, _SkipBlock) and not isinstance(m.resample, torch.nn.Identity)
    ]
    assert len(resampling) == 4  # two down, two up: with the stem's max-pool, 1/8 at the bottom


def test_shared_up_blocks_run_twice_and_skips_replace_channels():
    """The first up blocks run before and after the bottom skip (as DLStudio's forward does); each skip across the
    U puts the encoder's first half of channels in place of the decoder's."""
    net = mUnet(channels=(4, 8), depth=8).eval()
    seen: dict[str, list[torch.Tensor]] = {}

    def keep(name: str, output: bool):
        def hook(module, args, out):
            seen.setdefault(name, []).append(out if output else args[0])

        return hook

    net.decoder3[0].register_forward_hook(keep("decoder3", True))
    for name in ("encoder1", "encoder2", "encoder3"):
        getattr(net, name).register_forward_hook(keep(name, True))
    net.decoder3_norm.register_forward_hook(keep("restored3", False))
    net.decoder1.register_forward_hook(keep("restored2", False))
    net.head.register_forward_hook(keep("restored1", False))
    with torch.no_grad():
        net(torch.randn(2, 3, 16, 16))
    assert len(seen["decoder3"]) == 2
    torch.testing.assert_close(seen["restored3"][0][:, :4], seen["encoder3"][0][:, :4])  # half of 8
    torch.testing.assert_close(seen["restored2"][0][:, :2], seen["encoder2"][0][:, :2])  # half of 4
    torch.testing.assert_close(seen["restored1"][0][:, :2], seen["encoder1"][0][:, :2])
    assert not torch.equal(seen["restored1"][0][:, 2:], seen["encoder1"][0][:, 2:])


def test_restore_replaces_the_first_channels():
    x = torch.arange(4.0).view(1, 4, 1, 1)
    saved = torch.tensor([9.0, 8.0]).view(1, 2, 1, 1)
    assert _restore(x, saved).flatten().tolist() == [9.0, 8.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "in_ch, out_ch, transposed, residual",
    [
        (4, 4, False, lambda x: x),
        (4, 8, False, lambda x: torch.cat([x, x], dim=1)),  # DN widening: the input twice
        (8, 4, True, lambda x: x[:, 4:]),  # UP narrowing: the input's second half
        (4, 4, True, lambda x: x),
    ],
    ids=["dn-keep", "dn-widen", "up-narrow", "up-keep"],
)
def test_skip_block_residual(in_ch, out_ch, transposed, residual):
    block = _SkipBlock(in_ch, out_ch, transposed=transposed).eval()
    plain = _SkipBlock(in_ch, out_ch, transposed=transposed, skip=False).eval()
    plain.load_state_dict(block.state_dict())
    x = torch.randn(2, in_ch, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(block(x) - plain(x), residual(x))
        assert plain(x).shape == (2, out_ch, 5, 6)


def test_resampling_blocks_halve_and_double():
    down = _SkipBlock(4, 4, transposed=False, resample=True).eval()
    up = _SkipBlock(4, 4, transposed=True, resample=True).eval()
    x = torch.randn(1, 4, 6, 10)
    with torch.no_grad():
        assert down(x).shape == (1, 4, 3, 5)
        y = up(x)
        assert y.shape == (1, 4, 12, 20)
        # a 1x1 stride-2 transposed conv fills every other row and column; the rest is its bias, twice (out + input)
        bias = up.resample.conv.bias.view(1, 4, 1, 1)
        torch.testing.assert_close(y[:, :, 1::2, :], (2 * bias).expand(1, 4, 6, 20))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spatial_dims": 3}, "2D only"),
        ({"channels": (64, 96)}, r"\(64, 96\)"),
        ({"channels": (3, 6)}, r"\(3, 6\)"),
        ({"channels": (8, 16, 32)}, "two widths"),
        ({"depth": 5}, "got 5"),
        ({"depth": 0}, "got 0"),
        ({"out_channels": 0}, "got 3, 0"),
    ],
    ids=["3d", "not-double", "odd-c0", "three-widths", "odd-depth", "zero-depth", "no-outputs"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mUnet(**kwargs)


def test_wrong_input_channels_names_shape():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\).*\[2, 1, 16, 16\]"):
        mUnet(**SMALL)(torch.randn(2, 1, 16, 16))


@pytest.mark.parametrize("flag", ["false", "False", "0", False], ids=["false", "False", "0", "bool"])
def test_string_flag_from_the_command_line(flag):
    net = mUnet(skip_connections=flag, **SMALL)
    assert net.skip_connections is False and all(not m.skip for m in net.modules() if isinstance(m, _SkipBlock))
