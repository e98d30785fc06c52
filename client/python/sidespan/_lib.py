# SPDX-License-Identifier: MIT
"""ctypes declarations of libsidespan's public API (client/include/sidespan.h).

Only the binding lives here: the wire protocol, buffering, reconnects and
sampling are the C library's. The structs mirror the header's layout; the
ones that may grow carry their size, which the *_init_sized() functions are
given, so a newer library still reads what this module wrote.
"""

import ctypes
import ctypes.util
import os
import subprocess

c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_int64 = ctypes.c_int64
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
c_bool = ctypes.c_bool
c_void_p = ctypes.c_void_p

KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
ATTR_STR, ATTR_INT, ATTR_DOUBLE, ATTR_BOOL = 1, 2, 3, 4
ATTR_STR_ARRAY, ATTR_INT_ARRAY, ATTR_DOUBLE_ARRAY = 5, 6, 7
OPEN_DISABLED = 1


class _Array(ctypes.Structure):
    _fields_ = [("v", c_void_p), ("n", c_size_t)]


class _AttrValue(ctypes.Union):
    _fields_ = [("s", c_char_p), ("i", c_int64), ("d", c_double), ("b", c_bool),
                ("arr", _Array)]


class Attr(ctypes.Structure):
    _fields_ = [("key", c_char_p), ("type", c_int), ("value", _AttrValue)]


class Options(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("socket_path", c_char_p), ("service_name", c_char_p),
                ("sample_rate", c_double), ("include_content", c_bool),
                ("flush_on_exit", c_bool), ("exit_flush_timeout_ms", c_int),
                ("buffer_size", c_size_t), ("max_frame", c_size_t),
                ("resource_attrs", ctypes.POINTER(Attr)), ("n_resource_attrs", c_size_t)]


class Stats(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("spans_started", ctypes.c_uint64),
                ("unsampled", ctypes.c_uint64), ("frames_queued", ctypes.c_uint64),
                ("frames_sent", ctypes.c_uint64), ("bytes_sent", ctypes.c_uint64),
                ("dropped", ctypes.c_uint64), ("attrs_dropped", ctypes.c_uint64),
                ("reconnects", ctypes.c_uint64), ("connect_failures", ctypes.c_uint64),
                ("buffered_bytes", ctypes.c_uint64), ("connected", c_bool),
                ("enabled", c_bool), ("buffer_capacity", ctypes.c_uint64)]


class RunResult(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("status", c_char_p), ("error", c_char_p),
                ("output", c_char_p), ("input_tokens", c_int64), ("output_tokens", c_int64),
                ("total_tokens", c_int64), ("cache_read_tokens", c_int64),
                ("cache_write_tokens", c_int64), ("reasoning_tokens", c_int64),
                ("requests", c_int64), ("tool_call_count", c_int64),
                ("executed_steps", c_int64), ("is_streaming", c_int),
                ("total_cost", c_double), ("execution_time", c_double),
                ("model_execution_time", c_double), ("tool_execution_time", c_double),
                ("framework_overhead_time", c_double), ("time_to_first_token", c_double)]


class ChatRequest(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("temperature", c_double), ("top_p", c_double),
                ("max_tokens", c_int64), ("server_address", c_char_p), ("server_port", c_int),
                ("input_messages", c_char_p), ("system_instructions", c_char_p)]


class ChatResult(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("response_model", c_char_p), ("response_id", c_char_p),
                ("finish_reasons", ctypes.POINTER(c_char_p)), ("n_finish_reasons", c_size_t),
                ("input_tokens", c_int64), ("output_tokens", c_int64),
                ("cache_read_tokens", c_int64), ("cache_creation_tokens", c_int64),
                ("output_messages", c_char_p), ("error", c_char_p)]


P = c_void_p  # sidespan_client *, sidespan_span *
PP = ctypes.POINTER(c_void_p)

_SIGNATURES = {
    "sidespan_version": (c_char_p, []),
    "sidespan_strerror": (c_char_p, [c_int]),
    "sidespan_options_init_sized": (None, [ctypes.POINTER(Options), c_size_t]),
    "sidespan_client_open": (c_int, [ctypes.POINTER(Options), PP]),
    "sidespan_client_open_env_with": (c_int, [ctypes.POINTER(Options), c_bool, PP]),
    "sidespan_client_close": (c_int, [PP]),
    "sidespan_flush": (c_int, [P, c_int]),
    "sidespan_stats_init_sized": (None, [ctypes.POINTER(Stats), c_size_t]),
    "sidespan_client_stats": (c_int, [P, ctypes.POINTER(Stats)]),
    "sidespan_span_start": (c_int, [P, P, c_char_p, c_int, PP]),
    "sidespan_span_start_remote": (c_int, [P, c_char_p, c_char_p, c_int, PP]),
    "sidespan_span_set_attr": (c_int, [P, ctypes.POINTER(Attr)]),
    "sidespan_span_add_event": (c_int, [P, c_char_p, ctypes.POINTER(Attr), c_size_t]),
    "sidespan_span_end": (c_int, [P, c_int, c_char_p]),
    "sidespan_span_traceparent": (c_int, [P, ctypes.c_char_p, c_size_t]),
    "sidespan_span_trace_id_hex": (c_int, [P, ctypes.c_char_p, c_size_t]),
    "sidespan_span_span_id_hex": (c_int, [P, ctypes.c_char_p, c_size_t]),
    "sidespan_agent_run_start": (c_int, [P, c_char_p, c_char_p, c_char_p, c_char_p, c_char_p,
                                         c_char_p, PP]),
    "sidespan_run_result_init_sized": (None, [ctypes.POINTER(RunResult), c_size_t]),
    "sidespan_agent_run_end": (c_int, [P, ctypes.POINTER(RunResult)]),
    "sidespan_pipeline_start": (c_int, [P, P, c_int64, c_bool, PP]),
    "sidespan_step_start": (c_int, [P, P, c_char_p, c_char_p, PP]),
    "sidespan_step_end": (c_int, [P, c_char_p, c_double]),
    "sidespan_chat_request_init_sized": (None, [ctypes.POINTER(ChatRequest), c_size_t]),
    "sidespan_chat_start": (c_int, [P, P, c_char_p, c_char_p, ctypes.POINTER(ChatRequest), PP]),
    "sidespan_chat_first_token": (c_int, [P]),
    "sidespan_chat_result_init_sized": (None, [ctypes.POINTER(ChatResult), c_size_t]),
    "sidespan_chat_end": (c_int, [P, ctypes.POINTER(ChatResult)]),
    "sidespan_tool_start": (c_int, [P, P, c_char_p, c_char_p, c_char_p, PP]),
    "sidespan_tool_end": (c_int, [P, c_bool, c_char_p, c_double]),
}


def _candidates():
    """Where the library may be, in the order tried."""
    env = os.environ.get("SIDESPAN_LIBRARY")
    if env:
        yield env
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "sidespan"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        if libdir:
            yield os.path.join(libdir, "libsidespan.so.0")
    except (OSError, subprocess.SubprocessError):
        pass
    found = ctypes.util.find_library("sidespan")
    if found:
        yield found
    # Imported from a source tree with a meson build in build/.
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "..", "..", "..", "build", "client", "libsidespan.so.0")


def load():
    """The loaded library with its signatures declared, or (None, why)."""
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
            continue
        for name, (res, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = argtypes
        return lib, None
    return None, "; ".join(errors) or "libsidespan not found"


def enc(s):
    """A Python str (or None) as bytes for a const char * argument."""
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8", "surrogateescape")
