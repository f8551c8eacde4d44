"""whisper.h 1.8.5 in ctypes: its structs, callback types and function signatures, one to one; and the
few functions of ggml.h (its quantiser) that `models import` calls.

Written by hand from the header in the pywhispercpp 1.5.1 sdist (native/fetch_whisper_cpp.py puts it at
.cache/whisper.cpp/include/whisper.h). The order and types of every struct's fields are the C ABI: a field
out of place shifts every field after it, which `library.check_layout` catches on load for the params
structs. The deprecated non-`_with_params` initialisers and OpenVINO are left out.
"""

from __future__ import annotations

import ctypes
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_float,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_void_p,
)
from typing import Any

#: The whisper.cpp release these declarations describe; `library.load` refuses any other.
VERSION = "1.8.5"

SAMPLE_RATE = 16_000  # WHISPER_SAMPLE_RATE

token = c_int32  # whisper_token
context_p = c_void_p  # struct whisper_context *
state_p = c_void_p  # struct whisper_state *
vad_context_p = c_void_p  # struct whisper_vad_context *
vad_segments_p = c_void_p  # struct whisper_vad_segments *

# enum whisper_sampling_strategy
SAMPLING_GREEDY = 0
SAMPLING_BEAM_SEARCH = 1

# enum whisper_alignment_heads_preset: which cross-attention heads DTW token timestamps read.
AHEADS_NONE = 0
AHEADS_N_TOP_MOST = 1
AHEADS_CUSTOM = 2
AHEADS_TINY_EN = 3
AHEADS_TINY = 4
AHEADS_BASE_EN = 5
AHEADS_BASE = 6
AHEADS_SMALL_EN = 7
AHEADS_SMALL = 8
AHEADS_MEDIUM_EN = 9
AHEADS_MEDIUM = 10
AHEADS_LARGE_V1 = 11
AHEADS_LARGE_V2 = 12
AHEADS_LARGE_V3 = 13
AHEADS_LARGE_V3_TURBO = 14

# enum ggml_log_level
LOG_NONE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_CONT = range(6)

# enum ggml_type (ggml.h): the tensor types a whisper.cpp model file stores.
GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q4_0 = 0, 1, 2
GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0 = 6, 7, 8
GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K = 12, 13, 14
GGML_TYPE_IQ4_NL = 20
GGML_TYPE_BF16 = 30


class Ahead(Structure):
    _fields_ = (("n_text_layer", c_int), ("n_head", c_int))


class Aheads(Structure):
    _fields_ = (("n_heads", c_size_t), ("heads", POINTER(Ahead)))


class ContextParams(Structure):
    _fields_ = (
        ("use_gpu", c_bool),
        ("flash_attn", c_bool),
        ("gpu_device", c_int),
        ("dtw_token_timestamps", c_bool),
        ("dtw_aheads_preset", c_int),
        ("dtw_n_top", c_int),
        ("dtw_aheads", Aheads),
        ("dtw_mem_size", c_size_t),
    )


class TokenData(Structure):
    _fields_ = (
        ("id", token),
        ("tid", token),
        ("p", c_float),
        ("plog", c_float),
        ("pt", c_float),
        ("ptsum", c_float),
        # Centiseconds; t0/t1 only with token_timestamps, t_dtw only with DTW on the context too.
        ("t0", c_int64),
        ("t1", c_int64),
        ("t_dtw", c_int64),
        ("vlen", c_float),
    )


class ModelLoader(Structure):
    _fields_ = (
        ("context", c_void_p),
        ("read", CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_size_t)),
        ("eof", CFUNCTYPE(c_bool, c_void_p)),
        ("close", CFUNCTYPE(None, c_void_p)),
    )


class GrammarElement(Structure):
    _fields_ = (("type", c_int), ("value", c_uint32))


class VadParams(Structure):
    _fields_ = (
        ("threshold", c_float),
        ("min_speech_duration_ms", c_int),
        ("min_silence_duration_ms", c_int),
        ("max_speech_duration_s", c_float),
        ("speech_pad_ms", c_int),
        ("samples_overlap", c_float),
    )


class VadContextParams(Structure):
    _fields_ = (("n_threads", c_int), ("use_gpu", c_bool), ("gpu_device", c_int))


class Timings(Structure):
    _fields_ = (
        ("sample_ms", c_float),
        ("encode_ms", c_float),
        ("decode_ms", c_float),
        ("batchd_ms", c_float),
        ("prompt_ms", c_float),
    )


# Callbacks. ctypes takes the GIL to run one and drops it on return; the Python object behind a pointer
# must outlive every call whisper.cpp may make through it.
NewSegmentCallback = CFUNCTYPE(None, context_p, state_p, c_int, c_void_p)
ProgressCallback = CFUNCTYPE(None, context_p, state_p, c_int, c_void_p)
EncoderBeginCallback = CFUNCTYPE(c_bool, context_p, state_p, c_void_p)
AbortCallback = CFUNCTYPE(c_bool, c_void_p)  # ggml_abort_callback
LogitsFilterCallback = CFUNCTYPE(
    None, context_p, state_p, POINTER(TokenData), c_int, POINTER(c_float), c_void_p
)
LogCallback = CFUNCTYPE(None, c_int, c_char_p, c_void_p)  # ggml_log_callback


class GreedyParams(Structure):
    _fields_ = (("best_of", c_int),)


class BeamSearchParams(Structure):
    _fields_ = (("beam_size", c_int), ("patience", c_float))


class FullParams(Structure):
    _fields_ = (
        ("strategy", c_int),
        ("n_threads", c_int),
        ("n_max_text_ctx", c_int),
        ("offset_ms", c_int),
        ("duration_ms", c_int),
        ("translate", c_bool),
        ("no_context", c_bool),
        ("no_timestamps", c_bool),
        ("single_segment", c_bool),
        ("print_special", c_bool),
        ("print_progress", c_bool),
        ("print_realtime", c_bool),
        ("print_timestamps", c_bool),
        ("token_timestamps", c_bool),
        ("thold_pt", c_float),
        ("thold_ptsum", c_float),
        ("max_len", c_int),
        ("split_on_word", c_bool),
        ("max_tokens", c_int),
        ("debug_mode", c_bool),
        ("audio_ctx", c_int),
        ("tdrz_enable", c_bool),
        ("suppress_regex", c_char_p),
        ("initial_prompt", c_char_p),
        ("carry_initial_prompt", c_bool),
        ("prompt_tokens", POINTER(token)),
        ("prompt_n_tokens", c_int),
        ("language", c_char_p),
        ("detect_language", c_bool),
        ("suppress_blank", c_bool),
        ("suppress_nst", c_bool),
        ("temperature", c_float),
        ("max_initial_ts", c_float),
        ("length_penalty", c_float),
        ("temperature_inc", c_float),
        ("entropy_thold", c_float),
        ("logprob_thold", c_float),
        ("no_speech_thold", c_float),
        ("greedy", GreedyParams),
        ("beam_search", BeamSearchParams),
        ("new_segment_callback", NewSegmentCallback),
        ("new_segment_callback_user_data", c_void_p),
        ("progress_callback", ProgressCallback),
        ("progress_callback_user_data", c_void_p),
        ("encoder_begin_callback", EncoderBeginCallback),
        ("encoder_begin_callback_user_data", c_void_p),
        ("abort_callback", AbortCallback),
        ("abort_callback_user_data", c_void_p),
        ("logits_filter_callback", LogitsFilterCallback),
        ("logits_filter_callback_user_data", c_void_p),
        ("grammar_rules", POINTER(POINTER(GrammarElement))),
        ("n_grammar_rules", c_size_t),
        ("i_start_rule", c_size_t),
        ("grammar_penalty", c_float),
        ("vad", c_bool),
        ("vad_model_path", c_char_p),
        ("vad_params", VadParams),
    )


_floats = POINTER(c_float)
_tokens = POINTER(token)

#: name → (result type, argument types), in whisper.h's order.
FUNCTIONS: dict[str, tuple[Any, list[Any]]] = {
    "whisper_version": (c_char_p, []),
    # Loading: a context without a state holds only the weights and vocabulary, shared by many states.
    "whisper_init_from_file_with_params": (context_p, [c_char_p, ContextParams]),
    "whisper_init_from_buffer_with_params": (context_p, [c_void_p, c_size_t, ContextParams]),
    "whisper_init_with_params": (context_p, [POINTER(ModelLoader), ContextParams]),
    "whisper_init_from_file_with_params_no_state": (context_p, [c_char_p, ContextParams]),
    "whisper_init_from_buffer_with_params_no_state": (context_p, [c_void_p, c_size_t, ContextParams]),
    "whisper_init_with_params_no_state": (context_p, [POINTER(ModelLoader), ContextParams]),
    "whisper_init_state": (state_p, [context_p]),
    "whisper_free": (None, [context_p]),
    "whisper_free_state": (None, [state_p]),
    "whisper_free_params": (None, [POINTER(FullParams)]),
    "whisper_free_context_params": (None, [POINTER(ContextParams)]),
    # Low-level passes.
    "whisper_pcm_to_mel": (c_int, [context_p, _floats, c_int, c_int]),
    "whisper_pcm_to_mel_with_state": (c_int, [context_p, state_p, _floats, c_int, c_int]),
    "whisper_set_mel": (c_int, [context_p, _floats, c_int, c_int]),
    "whisper_set_mel_with_state": (c_int, [context_p, state_p, _floats, c_int, c_int]),
    "whisper_encode": (c_int, [context_p, c_int, c_int]),
    "whisper_encode_with_state": (c_int, [context_p, state_p, c_int, c_int]),
    "whisper_decode": (c_int, [context_p, _tokens, c_int, c_int, c_int]),
    "whisper_decode_with_state": (c_int, [context_p, state_p, _tokens, c_int, c_int, c_int]),
    # Vocabulary and languages.
    "whisper_tokenize": (c_int, [context_p, c_char_p, _tokens, c_int]),
    "whisper_token_count": (c_int, [context_p, c_char_p]),
    "whisper_lang_max_id": (c_int, []),
    "whisper_lang_id": (c_int, [c_char_p]),
    "whisper_lang_str": (c_char_p, [c_int]),
    "whisper_lang_str_full": (c_char_p, [c_int]),
    "whisper_lang_auto_detect": (c_int, [context_p, c_int, c_int, _floats]),
    "whisper_lang_auto_detect_with_state": (c_int, [context_p, state_p, c_int, c_int, _floats]),
    # The model's shape.
    "whisper_n_len": (c_int, [context_p]),
    "whisper_n_len_from_state": (c_int, [state_p]),
    "whisper_n_vocab": (c_int, [context_p]),
    "whisper_n_text_ctx": (c_int, [context_p]),
    "whisper_n_audio_ctx": (c_int, [context_p]),
    "whisper_is_multilingual": (c_int, [context_p]),
    "whisper_model_n_vocab": (c_int, [context_p]),
    "whisper_model_n_audio_ctx": (c_int, [context_p]),
    "whisper_model_n_audio_state": (c_int, [context_p]),
    "whisper_model_n_audio_head": (c_int, [context_p]),
    "whisper_model_n_audio_layer": (c_int, [context_p]),
    "whisper_model_n_text_ctx": (c_int, [context_p]),
    "whisper_model_n_text_state": (c_int, [context_p]),
    "whisper_model_n_text_head": (c_int, [context_p]),
    "whisper_model_n_text_layer": (c_int, [context_p]),
    "whisper_model_n_mels": (c_int, [context_p]),
    "whisper_model_ftype": (c_int, [context_p]),
    "whisper_model_type": (c_int, [context_p]),
    "whisper_get_logits": (_floats, [context_p]),
    "whisper_get_logits_from_state": (_floats, [state_p]),
    "whisper_token_to_str": (c_char_p, [context_p, token]),
    "whisper_model_type_readable": (c_char_p, [context_p]),
    "whisper_token_eot": (token, [context_p]),
    "whisper_token_sot": (token, [context_p]),
    "whisper_token_solm": (token, [context_p]),
    "whisper_token_prev": (token, [context_p]),
    "whisper_token_nosp": (token, [context_p]),
    "whisper_token_not": (token, [context_p]),
    "whisper_token_beg": (token, [context_p]),
    "whisper_token_lang": (token, [context_p, c_int]),
    "whisper_token_translate": (token, [context_p]),
    "whisper_token_transcribe": (token, [context_p]),
    "whisper_get_timings": (POINTER(Timings), [context_p]),
    "whisper_print_timings": (None, [context_p]),
    "whisper_reset_timings": (None, [context_p]),
    "whisper_print_system_info": (c_char_p, []),
    # Full transcription.
    "whisper_context_default_params_by_ref": (POINTER(ContextParams), []),
    "whisper_context_default_params": (ContextParams, []),
    "whisper_full_default_params_by_ref": (POINTER(FullParams), [c_int]),
    "whisper_full_default_params": (FullParams, [c_int]),
    "whisper_full": (c_int, [context_p, FullParams, _floats, c_int]),
    "whisper_full_with_state": (c_int, [context_p, state_p, FullParams, _floats, c_int]),
    "whisper_full_parallel": (c_int, [context_p, FullParams, _floats, c_int, c_int]),
    # Results: the plain getters read the context's own state, the `_from_state` ones any state.
    "whisper_full_n_segments": (c_int, [context_p]),
    "whisper_full_n_segments_from_state": (c_int, [state_p]),
    "whisper_full_lang_id": (c_int, [context_p]),
    "whisper_full_lang_id_from_state": (c_int, [state_p]),
    "whisper_full_get_segment_t0": (c_int64, [context_p, c_int]),
    "whisper_full_get_segment_t0_from_state": (c_int64, [state_p, c_int]),
    "whisper_full_get_segment_t1": (c_int64, [context_p, c_int]),
    "whisper_full_get_segment_t1_from_state": (c_int64, [state_p, c_int]),
    "whisper_full_get_segment_speaker_turn_next": (c_bool, [context_p, c_int]),
    "whisper_full_get_segment_speaker_turn_next_from_state": (c_bool, [state_p, c_int]),
    "whisper_full_get_segment_text": (c_char_p, [context_p, c_int]),
    "whisper_full_get_segment_text_from_state": (c_char_p, [state_p, c_int]),
    "whisper_full_n_tokens": (c_int, [context_p, c_int]),
    "whisper_full_n_tokens_from_state": (c_int, [state_p, c_int]),
    "whisper_full_get_token_text": (c_char_p, [context_p, c_int, c_int]),
    "whisper_full_get_token_text_from_state": (c_char_p, [context_p, state_p, c_int, c_int]),
    "whisper_full_get_token_id": (token, [context_p, c_int, c_int]),
    "whisper_full_get_token_id_from_state": (token, [state_p, c_int, c_int]),
    "whisper_full_get_token_data": (TokenData, [context_p, c_int, c_int]),
    "whisper_full_get_token_data_from_state": (TokenData, [state_p, c_int, c_int]),
    "whisper_full_get_token_p": (c_float, [context_p, c_int, c_int]),
    "whisper_full_get_token_p_from_state": (c_float, [state_p, c_int, c_int]),
    "whisper_full_get_segment_no_speech_prob": (c_float, [context_p, c_int]),
    "whisper_full_get_segment_no_speech_prob_from_state": (c_float, [state_p, c_int]),
    # Voice activity detection (Silero).
    "whisper_vad_default_params": (VadParams, []),
    "whisper_vad_default_context_params": (VadContextParams, []),
    "whisper_vad_init_from_file_with_params": (vad_context_p, [c_char_p, VadContextParams]),
    "whisper_vad_init_with_params": (vad_context_p, [POINTER(ModelLoader), VadContextParams]),
    "whisper_vad_detect_speech": (c_bool, [vad_context_p, _floats, c_int]),
    "whisper_vad_detect_speech_no_reset": (c_bool, [vad_context_p, _floats, c_int]),
    "whisper_vad_reset_state": (None, [vad_context_p]),
    "whisper_vad_n_probs": (c_int, [vad_context_p]),
    "whisper_vad_probs": (_floats, [vad_context_p]),
    "whisper_vad_segments_from_probs": (vad_segments_p, [vad_context_p, VadParams]),
    "whisper_vad_segments_from_samples": (vad_segments_p, [vad_context_p, VadParams, _floats, c_int]),
    "whisper_vad_segments_n_segments": (c_int, [vad_segments_p]),
    "whisper_vad_segments_get_segment_t0": (c_float, [vad_segments_p, c_int]),
    "whisper_vad_segments_get_segment_t1": (c_float, [vad_segments_p, c_int]),
    "whisper_vad_free_segments": (None, [vad_segments_p]),
    "whisper_vad_free": (None, [vad_context_p]),
    # Benchmarks and logging.
    "whisper_bench_memcpy": (c_int, [c_int]),
    "whisper_bench_memcpy_str": (c_char_p, [c_int]),
    "whisper_bench_ggml_mul_mat": (c_int, [c_int]),
    "whisper_bench_ggml_mul_mat_str": (c_char_p, [c_int]),
    "whisper_log_set": (None, [LogCallback, c_void_p]),
    # ggml.h's quantiser. libwhisper links ggml, and dlsym on libwhisper's handle searches the libraries it
    # depends on too, so these come from the same ggml the model will later run on.
    "ggml_quantize_requires_imatrix": (c_bool, [c_int]),
    "ggml_quantize_chunk": (c_size_t, [c_int, _floats, c_void_p, c_int64, c_int64, c_int64, _floats]),
    "ggml_row_size": (c_size_t, [c_int, c_int64]),
}


def declare(library: ctypes.CDLL) -> list[str]:
    """Give each function of `library` its signature; the names it lacks, which the caller should refuse."""
    missing = []
    for name, (result, arguments) in FUNCTIONS.items():
        try:
            function = getattr(library, name)
        except AttributeError:
            missing.append(name)
            continue
        function.restype = result
        function.argtypes = arguments
    return missing
