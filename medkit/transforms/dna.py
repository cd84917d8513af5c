"""DNA sequence transforms: one-hot encoding and reverse-complement augmentation."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform, Transform
from monai.utils import TransformBackends

__all__ = ["OneHotDNA", "OneHotDNAd", "ReverseComplement", "ReverseComplementd", "reverse_complement_batch"]

DNA_ALPHABET = "ACGT"
_VALID = frozenset("ACGTN")
# byte -> channel lookup: A C G T get 0..3; N (and padding) get 4, an all-zero row after dropping the extra column
_LOOKUP = np.full(256, 4, dtype=np.int64)
for _i, _base in enumerate(DNA_ALPHABET):
    _LOOKUP[ord(_base)] = _i
    _LOOKUP[ord(_base.lower())] = _i
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


class OneHotDNA(Transform):
    """Encodes a DNA string as one-hot channels A, C, G, T; ``N`` becomes an all-zero position.

    Args:
        channel_first: ``False`` gives ``(L, 4)``, the batch-first LSTM layout; ``True`` gives ``(4, L)`` for
            convolutions.
        dtype: the output dtype.

    Raises:
        ValueError: for characters other than A, C, G, T, N (either case), naming the first one and its position.
    """

    def __init__(self, channel_first: bool = False, dtype: torch.dtype = torch.float32) -> None:
        self.channel_first = channel_first
        self.dtype = dtype

    def __call__(self, sequence: str) -> torch.Tensor:
        if not isinstance(sequence, str):
            raise TypeError(f"OneHotDNA expects a str, got {type(sequence).__name__}")
        upper = sequence.upper()
        bad = set(upper) - _VALID
        if bad:
            pos = next(i for i, c in enumerate(upper) if c in bad)
            raise ValueError(f"invalid DNA character {sequence[pos]!r} at position {pos} of {sequence[:40]!r}")
        codes = _LOOKUP[np.frombuffer(upper.encode("ascii"), dtype=np.uint8)]
        onehot = np.eye(5, 4, dtype=np.float32)[codes]
        out = torch.from_numpy(onehot.T.copy() if self.channel_first else onehot)
        return out.to(self.dtype)


class OneHotDNAd(MapTransform):
    """Dictionary version of :class:`OneHotDNA`.

    Args:
        keys: keys holding DNA strings.
        output_keys: where to write the encodings (same length as ``keys``); ``None`` overwrites ``keys``.
        length_key: if given, the sequence length is stored there as an int (used to pack padded batches).
        channel_first: see :class:`OneHotDNA`.
        dtype: see :class:`OneHotDNA`.
        allow_missing_keys: don't raise for missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: KeysCollection | None = None,
        length_key: str | None = None,
        channel_first: bool = False,
        dtype: torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = self.keys if output_keys is None else tuple(np.atleast_1d(output_keys).tolist())
        if len(self.output_keys) != len(self.keys):
            raise ValueError(f"output_keys {self.output_keys} must match keys {self.keys} one to one")
        self.length_key = length_key
        self.encoder = OneHotDNA(channel_first=channel_first, dtype=dtype)

    def __call__(self, data: Mapping[Hashable, str]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            try:
                d[out_key] = self.encoder(d[key])
            except ValueError as e:
                raise ValueError(f"record {d.get('id', '?')!r}: {e}") from None
            if self.length_key is not None:
                d[self.length_key] = len(d[key])
        return d


class ReverseComplement(Transform):
    """Reverse complement of a DNA string, or of a one-hot ``(L, 4)`` / ``(4, L)`` tensor in A, C, G, T order.

    On one-hot data the complement swaps A<->T and C<->G, which is the reversed channel order, so the result is the
    input flipped along both axes. N (all zeros) stays N. Apply it before padding: a padded tensor would move its
    padding to the front.

    Args:
        channel_first: layout of tensor inputs, as in :class:`OneHotDNA`.
    """

    def __init__(self, channel_first: bool = False) -> None:
        self.channel_first = channel_first

    def __call__(self, data: str | torch.Tensor) -> str | torch.Tensor:
        if isinstance(data, str):
            return data.translate(_COMPLEMENT)[::-1]
        if data.dim() != 2 or data.shape[0 if self.channel_first else 1] != 4:
            raise ValueError(
                f"expected a one-hot {'(4, L)' if self.channel_first else '(L, 4)'} tensor, got {data.shape}"
            )
        return torch.flip(data, dims=(0, 1))


def reverse_complement_batch(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Reverse complement of each sequence in a zero-padded one-hot batch ``(B, L, 4)``, keeping the padding at the end.

    Sequence ``i`` becomes its reverse complement over its first ``lengths[i]`` positions (as
    :class:`ReverseComplement` would give it alone) and stays zero after them, so the result batches and packs like
    the input. Without ``lengths`` every sequence is ``L`` long.

    Args:
        x: one-hot batch, batch first, channels A, C, G, T last.
        lengths: ``(B,)`` sequence lengths in ``[1, L]``, or ``None``.

    Raises:
        ValueError: if ``x`` is not ``(B, L, 4)`` or ``lengths`` does not have one entry per sequence.
    """
    if x.dim() != 3 or x.shape[2] != 4:
        raise ValueError(f"expected a one-hot (B, L, 4) batch, got shape {tuple(x.shape)}")
    if lengths is None:
        return torch.flip(x, dims=(1, 2))
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"expected {x.shape[0]} lengths for a batch of shape {tuple(x.shape)}, got {lengths.shape}")
    # position j of sequence i reads position lengths[i] - 1 - j; positions past the end stay padding
    source = lengths.to(x.device).long()[:, None] - 1 - torch.arange(x.shape[1], device=x.device)[None, :]
    inside = (source >= 0).unsqueeze(-1)
    gathered = torch.gather(x, 1, source.clamp(min=0).unsqueeze(-1).expand(-1, -1, x.shape[2]))
    return torch.flip(gathered, dims=(2,)) * inside.to(x.dtype)


class ReverseComplementd(RandomizableTransform, MapTransform):
    """Random augmentation: with probability ``prob``, replaces every ``keys`` entry by its reverse complement.

    The reverse complement is the other DNA strand; a site is bound on either strand, so the label does not change.
    Reproducible with ``set_random_state`` (MONAI datasets and ``set_determinism`` seed it). The same draw applies to
    all keys of one sample.

    Args:
        keys: keys holding DNA strings or one-hot tensors (unpadded).
        prob: probability of flipping a sample; 1.0 always flips (test-time strand swap).
        channel_first: layout of tensor inputs.
        allow_missing_keys: don't raise for missing keys.
    """

    backend = [TransformBackends.TORCH]  # torch.flip: runs where the tensor is (the GPU data path)

    def __init__(
        self, keys: KeysCollection, prob: float = 0.5, channel_first: bool = False, allow_missing_keys: bool = False
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.rc = ReverseComplement(channel_first=channel_first)

    def __call__(self, data: Mapping[Hashable, str | torch.Tensor]) -> dict[Hashable, str | torch.Tensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = self.rc(d[key])
        return d
