"""whisper's encoder–decoder in PyTorch, sized down, with the parameter names whisper.cpp loads.

Every module name below becomes a ggml tensor name on export (`encoder.blocks.0.attn.query.weight`
and so on), so the layout follows openai-whisper's: pre-norm residual blocks, a key projection
without bias, a two-convolution audio stem with stride 2, fixed sinusoidal positions in the encoder,
learned positions in the decoder, and output logits tied to the token embedding.

The activation is GELU's tanh form because that is what ggml's `ggml_gelu` evaluates; training with
the erf form would leave a small, systematic gap between this model and its exported twin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CrossCache = list[tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Dimensions:
    #: Fixed by whisper.cpp and the vocabulary of the header we export with.
    n_mels: int = 80
    n_audio_ctx: int = 1500
    n_vocab: int = 51865
    n_text_ctx: int = 448
    #: Ours to choose. whisper.cpp needs the encoder and decoder widths equal (cross-attention).
    #: 168 with 3 + 3 layers keeps the f16 file under 25 MB (24.4 MB): the 51865-row token
    #: embedding alone is 51865 * width * 2 bytes (17.4 MB here, 26.6 MB at width 256), and the
    #: header's vocabulary adds 0.6 MB.
    width: int = 168
    heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3

    def __post_init__(self) -> None:
        if self.width % self.heads or self.width % 2:
            raise ValueError("the width must be even and divisible by the number of heads")
        if self.decoder_layers == 2 and self.n_vocab != 51866:
            # whisper.cpp (whisper_full) takes such a model for a first-release distil-whisper and
            # forces <|notimestamps|>: it would never decode the timestamps the model was trained on.
            raise ValueError("whisper.cpp decodes a 2-layer decoder without timestamps; use 1 or 3+")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sinusoids(length: int, channels: int, max_timescale: float = 10_000.0) -> Tensor:
    """whisper's encoder positions: sines then cosines over geometrically spaced timescales."""
    if channels % 2:
        raise ValueError("sinusoidal positions need an even number of channels")
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inverse = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inverse[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


class MultiHeadAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def _split(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

    def keys_values(self, source: Tensor) -> tuple[Tensor, Tensor]:
        return self._split(self.key(source)), self._split(self.value(source))

    def forward(
        self,
        x: Tensor,
        source: Tensor | None = None,
        cached: tuple[Tensor, Tensor] | None = None,
        causal: bool = False,
    ) -> Tensor:
        k, v = cached if cached is not None else self.keys_values(x if source is None else source)
        q = self._split(self.query(x))
        # The default scale, 1/sqrt(head width), is whisper's (it splits it as d^-1/4 on q and k).
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        batch, _, length, _ = attended.shape
        return self.out(attended.transpose(1, 2).reshape(batch, length, -1))


class ResidualBlock(nn.Module):
    def __init__(self, width: int, heads: int, cross: bool) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(width, heads)
        self.attn_ln = nn.LayerNorm(width)
        self.cross_attn = MultiHeadAttention(width, heads) if cross else None
        self.cross_attn_ln = nn.LayerNorm(width) if cross else None
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width)
        )
        self.mlp_ln = nn.LayerNorm(width)

    def forward(self, x: Tensor, cross: tuple[Tensor, Tensor] | None = None, causal: bool = False) -> Tensor:
        x = x + self.attn(self.attn_ln(x), causal=causal)
        if self.cross_attn is not None and self.cross_attn_ln is not None:
            x = x + self.cross_attn(self.cross_attn_ln(x), cached=cross)
        return x + self.mlp(self.mlp_ln(x))


class AudioEncoder(nn.Module):
    def __init__(self, dims: Dimensions) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(dims.n_mels, dims.width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dims.width, dims.width, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(dims.n_audio_ctx, dims.width))
        self.blocks = nn.ModuleList(
            ResidualBlock(dims.width, dims.heads, cross=False) for _ in range(dims.encoder_layers)
        )
        self.ln_post = nn.LayerNorm(dims.width)

    def forward(self, mel: Tensor) -> Tensor:
        """(batch, n_mels, 2 * context) features → (batch, context, width).

        whisper.cpp always encodes the full context (n_audio_ctx); a shorter one serves only the cheap
        first phase of training, whose model then learns the full context's padding (train.py).
        """
        x = F.gelu(self.conv1(mel), approximate="tanh")
        x = F.gelu(self.conv2(x), approximate="tanh").transpose(1, 2)
        if x.shape[1] > self.positional_embedding.shape[0] or mel.shape[2] % 2:
            limit = 2 * self.positional_embedding.shape[0]
            raise ValueError(f"expected an even number of mel frames, at most {limit}")
        x = x + self.positional_embedding[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    def __init__(self, dims: Dimensions) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(dims.n_vocab, dims.width)
        self.positional_embedding = nn.Parameter(torch.empty(dims.n_text_ctx, dims.width))
        self.blocks = nn.ModuleList(
            ResidualBlock(dims.width, dims.heads, cross=True) for _ in range(dims.decoder_layers)
        )
        self.ln = nn.LayerNorm(dims.width)

    def cross_cache(self, audio: Tensor) -> CrossCache:
        """Each block's cross-attention keys and values: computed once per window, reused per token."""
        return [block.cross_attn.keys_values(audio) for block in self.blocks]  # type: ignore[union-attr]

    def forward(
        self, tokens: Tensor, cache: CrossCache, last_only: bool = False, vocabulary: Tensor | None = None
    ) -> Tensor:
        """(batch, length) token ids → (batch, length, n_vocab) logits for each next token.

        `last_only` projects only the last position onto the vocabulary (length 1 out): decoding needs
        no more, and the 51865-way projection is most of a decoding step's cost. `vocabulary` (token
        ids) projects onto those tokens only: logit j is token vocabulary[j]'s.
        """
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        for block, cross in zip(self.blocks, cache, strict=True):
            x = block(x, cross=cross, causal=True)
        if last_only:
            x = x[:, -1:]
        weight = self.token_embedding.weight
        return self.ln(x) @ (weight if vocabulary is None else weight[vocabulary]).T


class Whisper(nn.Module):
    def __init__(self, dims: Dimensions) -> None:
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)
        self._initialise()

    def _initialise(self) -> None:
        # Small embeddings keep the tied output layer's first logits near uniform; the tokens the
        # training text never uses then stay far below the ones it does.
        nn.init.normal_(self.decoder.token_embedding.weight, std=0.02)
        nn.init.normal_(self.decoder.positional_embedding, std=0.01)

    def forward(self, mel: Tensor, tokens: Tensor) -> Tensor:
        return self.decoder(tokens, self.decoder.cross_cache(self.encoder(mel)))
