"""whisper.cpp's C API through ctypes: the declarations of whisper.h and the libwhisper they describe.

The layer below the engine: only `whisper_api.engine` imports it, and it imports nothing of the package
but itself.
"""
