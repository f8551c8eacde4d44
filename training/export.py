"""Write a trained `Whisper` as a ggml file whisper.cpp loads: the for-tests header, then tensors.

Each tensor record is: int32 n_dims, int32 name length, int32 type (0 = f32, 1 = f16), n_dims int32
sizes in ggml order (fastest-varying axis first, i.e. PyTorch's shape reversed), the name, the data.
whisper.cpp checks every tensor's name, shape and byte size against what it expects for the
hyperparameters in the header, and insists on all of them being present.

Matrices, convolution kernels and the token embedding are f16, as in whisper.cpp's own converter;
biases, norms and positional embeddings are f32. An all-f32 file (ftype 0) loads but cannot run in
the whisper.cpp that pywhispercpp 1.5.1 ships: its CPU im2col asserts an f16 convolution kernel.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from training.ggml_header import DEFAULT_HEADER, FTYPE_F16, Header, read_header
from training.model import Whisper

_GGML_F32, _GGML_F16 = 0, 1


def _is_weight_matrix(name: str, ndim: int) -> bool:
    return ndim >= 2 and not name.endswith("positional_embedding")


def ggml_tensors(model: Whisper) -> Iterator[tuple[str, np.ndarray]]:
    """(name, data) in the layout and precision whisper.cpp expects, in state-dict order."""
    for name, tensor in model.state_dict().items():
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if name.endswith(("conv1.bias", "conv2.bias")):
            # whisper.cpp adds conv biases as a [1, width] tensor broadcast over time.
            array = array.reshape(-1, 1)
        elif _is_weight_matrix(name, array.ndim):
            array = array.astype(np.float16)
        yield name, np.ascontiguousarray(array)


def round_to_export_precision(model: Whisper) -> Whisper:
    """Round, in place, the weights export stores as f16: the PyTorch twin of the exported file."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if _is_weight_matrix(name, tensor.ndim):
                tensor.copy_(tensor.half().float())
    return model


def tensor_record(name: str, array: np.ndarray) -> bytes:
    ggml_type = _GGML_F16 if array.dtype == np.float16 else _GGML_F32
    encoded = name.encode()
    shape = tuple(reversed(array.shape))
    header = struct.pack(f"<iii{len(shape)}i", len(shape), len(encoded), ggml_type, *shape)
    return header + encoded + array.astype(array.dtype.newbyteorder("<")).tobytes()


def model_header(model: Whisper, header: Header, ftype: int) -> Header:
    dims = model.dims
    if dims.n_vocab != header.hparams.n_vocab or dims.n_mels != header.hparams.n_mels:
        raise ValueError("the model's vocabulary or mel count does not match the header's")
    return header.with_hparams(
        n_audio_ctx=dims.n_audio_ctx,
        n_audio_state=dims.width,
        n_audio_head=dims.heads,
        n_audio_layer=dims.encoder_layers,
        n_text_ctx=dims.n_text_ctx,
        n_text_state=dims.width,
        n_text_head=dims.heads,
        n_text_layer=dims.decoder_layers,
        ftype=ftype,
    )


def export_ggml(
    model: Whisper, destination: Path, header_file: Path = DEFAULT_HEADER, ftype: int = FTYPE_F16
) -> Path:
    """Write `model` to `destination` atomically. The header's hparams record its dimensions."""
    if ftype != FTYPE_F16:
        raise ValueError(f"only ftype {FTYPE_F16} (f16) runs in this whisper.cpp, not {ftype}")
    header = model_header(model, read_header(header_file), ftype)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with partial.open("wb") as out:
        out.write(header.pack())
        for name, array in ggml_tensors(model):
            out.write(tensor_record(name, array))
    partial.replace(destination)
    return destination


__all__ = ["export_ggml", "ggml_tensors", "round_to_export_precision", "tensor_record"]
