# SPDX-License-Identifier: MIT
"""sidespan for Python: never-blocking OpenTelemetry tracing of AI agents.

A thin binding over libsidespan (ctypes): every call encodes into the C
library's bounded in-process buffer and returns; its thread writes to the
sidespand daemon, which exports OTLP. Nothing here raises into the agent
because the daemon is absent or slow: drops show in ``provider.stats()``.

    import sidespan

    provider = sidespan.TracingProvider(service_name="support-bot")
    with provider.agent_run(name="support-bot", model="gpt-4o", input=question) as run:
        with run.pipeline() as pipeline:
            with pipeline.step("model_execution") as step:
                with step.chat(provider="openai", model="gpt-4o") as chat:
                    chat.first_token()
                    chat.result(input_tokens=412, output_tokens=46, finish_reasons=["stop"])
        run.result(output=answer)
    provider.flush(2.0)

The current span follows ``contextvars``: spans started without a parent nest
under it, per thread and per asyncio task.
"""

import atexit
import contextvars
import ctypes
import functools
import inspect
import json
import os
import threading
import time
import traceback
import warnings

from . import _lib

__all__ = ["TracingProvider", "Span", "instrument_all", "default_provider", "version"]

_lib_handle, _lib_error = _lib.load()
_current = contextvars.ContextVar("sidespan_current_span", default=None)


def version():
    """The version of libsidespan loaded, or None without it."""
    return _lib_handle.sidespan_version().decode() if _lib_handle else None


def _env_bool(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


# ---- attributes ---------------------------------------------------------------------------


def _attr(key, value, keep):
    """A C sidespan_attr for value; keep collects what must outlive the call."""
    a = _lib.Attr()
    a.key = _lib.enc(key)
    if isinstance(value, bool):
        a.type, a.value.b = _lib.ATTR_BOOL, value
    elif isinstance(value, int):
        a.type, a.value.i = _lib.ATTR_INT, max(min(value, 2**63 - 1), -2**63)
    elif isinstance(value, float):
        a.type, a.value.d = _lib.ATTR_DOUBLE, value
    elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, str) for v in value):
        arr = (ctypes.c_char_p * len(value))(*[_lib.enc(v) for v in value])
        keep.append(arr)
        a.type = _lib.ATTR_STR_ARRAY
        a.value.arr.v, a.value.arr.n = ctypes.cast(arr, ctypes.c_void_p), len(value)
    elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        arr = (ctypes.c_int64 * len(value))(*value)
        keep.append(arr)
        a.type = _lib.ATTR_INT_ARRAY
        a.value.arr.v, a.value.arr.n = ctypes.cast(arr, ctypes.c_void_p), len(value)
    elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        arr = (ctypes.c_double * len(value))(*[float(v) for v in value])
        keep.append(arr)
        a.type = _lib.ATTR_DOUBLE_ARRAY
        a.value.arr.v, a.value.arr.n = ctypes.cast(arr, ctypes.c_void_p), len(value)
    else:
        # dicts, mixed lists and anything else: JSON, as OpenTelemetry's GenAI
        # conventions carry messages
        s = value if isinstance(value, str) else json.dumps(value, default=str)
        b = _lib.enc(s)
        keep.append(b)
        a.type, a.value.s = _lib.ATTR_STR, b
    return a


def _attrs(attributes, keep):
    items = list((attributes or {}).items())
    arr = (_lib.Attr * max(len(items), 1))()
    for i, (k, v) in enumerate(items):
        arr[i] = _attr(k, v, keep)
    return arr, len(items)


# ---- spans --------------------------------------------------------------------------------


class Span:
    """One span. A context manager: entering makes it the current span, leaving
    ends it (ERROR, with an ``exception`` event, when an exception leaves the
    block; the exception is re-raised). Every method is a no-op once ended or
    when tracing is off, and none raises."""

    def __init__(self, provider, handle):
        self._provider = provider
        self._h = handle  # c_void_p, or None for a no-op span
        self._token = None
        self._error = None
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    # -- attributes, events

    def set_attribute(self, key, value):
        if self._h is not None and value is not None:
            keep = []
            a = _attr(key, value, keep)
            _lib_handle.sidespan_span_set_attr(self._h, ctypes.byref(a))
        return self

    def set_attributes(self, attributes):
        for k, v in (attributes or {}).items():
            self.set_attribute(k, v)
        return self

    def add_event(self, name, attributes=None):
        if self._h is not None:
            keep = []
            arr, n = _attrs(attributes, keep)
            _lib_handle.sidespan_span_add_event(self._h, _lib.enc(name), arr, n)
        return self

    def record_exception(self, exc):
        """An ``exception`` event with exception.type, .message and .stacktrace."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.add_event("exception", {"exception.type": type(exc).__qualname__,
                                     "exception.message": str(exc),
                                     "exception.stacktrace": tb})
        return self

    def set_error(self, message):
        """End with ERROR and this message."""
        self._error = str(message)
        return self

    # -- identity

    def _hex(self, fn, size):
        if self._h is None:
            return None
        buf = ctypes.create_string_buffer(size)
        return buf.value.decode() if fn(self._h, buf, size) >= 0 else None

    def traceparent(self):
        """The W3C traceparent of this span, for an outgoing request (while it is open,
        as trace_id and span_id: the ids live in the C span, freed at its end)."""
        return self._hex(_lib_handle.sidespan_span_traceparent, 64) if self._h else None

    @property
    def trace_id(self):
        return self._hex(_lib_handle.sidespan_span_trace_id_hex, 40) if self._h else None

    @property
    def span_id(self):
        return self._hex(_lib_handle.sidespan_span_span_id_hex, 24) if self._h else None

    # -- children (a helper on any span: they nest under it)

    def span(self, name, kind="internal", attributes=None):
        return self._provider.span(name, kind, attributes, parent=self)

    def pipeline(self, total_steps=24, streaming=False):
        return self._provider._pipeline(self, total_steps, streaming)

    def step(self, name, description=None):
        return self._provider._step(self, name, description)

    def chat(self, provider, model, temperature=None, max_tokens=None, top_p=None,
             server_address=None, server_port=None, input_messages=None,
             system_instructions=None):
        return self._provider._chat(self, provider, model, temperature, max_tokens, top_p,
                                    server_address, server_port, input_messages,
                                    system_instructions)

    def tool(self, name, call_id=None, arguments=None):
        return self._provider._tool(self, name, call_id, arguments)

    # -- lifetime

    def __enter__(self):
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # left in another context (a generator): let it be
                pass
            self._token = None
        if exc is not None:
            self.record_exception(exc)
            self._error = self._error or "%s: %s" % (type(exc).__qualname__, exc)
        self.end()
        return False

    def _take(self):
        """The handle, once: the C end functions free it."""
        with self._lock:
            h, self._h = self._h, None
        return h

    def end(self):
        h = self._take()
        if h is not None:
            self._end(h)

    def _end(self, h):
        if self._error is not None:
            _lib_handle.sidespan_span_end(h, _lib.STATUS_ERROR, _lib.enc(self._error))
        else:
            _lib_handle.sidespan_span_end(h, _lib.STATUS_OK, None)


class AgentRun(Span):
    """``agent.run``: ``result()`` sets the run-level figures set at its end."""

    def __init__(self, provider, handle):
        super().__init__(provider, handle)
        self._result = {}

    def result(self, output=None, status=None, input_tokens=None, output_tokens=None,
               total_tokens=None, cache_read_tokens=None, cache_write_tokens=None,
               reasoning_tokens=None, requests=None, tool_call_count=None,
               executed_steps=None, is_streaming=None, total_cost=None,
               model_execution_time=None, tool_execution_time=None,
               time_to_first_token=None):
        for k, v in dict(locals()).items():
            if k != "self" and v is not None:
                self._result[k] = v
        return self

    def _end(self, h):
        r = _lib.RunResult()
        _lib_handle.sidespan_run_result_init_sized(ctypes.byref(r), ctypes.sizeof(r))
        keep = []
        for k, v in self._result.items():
            if k in ("output", "status"):
                b = _lib.enc(v)
                keep.append(b)
                setattr(r, k, b)
            elif k == "is_streaming":
                r.is_streaming = 1 if v else 0
            else:
                setattr(r, k, v)
        r.execution_time = time.monotonic() - self._t0
        if self._error is not None:
            r.error = _lib.enc(self._error)
        _lib_handle.sidespan_agent_run_end(h, ctypes.byref(r))


class Step(Span):
    """``pipeline.step.<name>``: ``status`` is upsonic.step.status (COMPLETED by default)."""

    status = None

    def _end(self, h):
        status = "ERROR" if self._error is not None else (self.status or "COMPLETED")
        _lib_handle.sidespan_step_end(h, _lib.enc(status), time.monotonic() - self._t0)


class Chat(Span):
    """``chat <model>``: ``first_token()`` when the first token arrives, ``result()``
    with the response before the block ends."""

    def __init__(self, provider, handle):
        super().__init__(provider, handle)
        self._result = {}

    def first_token(self):
        if self._h is not None:
            _lib_handle.sidespan_chat_first_token(self._h)
        return self

    def result(self, input_tokens=None, output_tokens=None, finish_reasons=None,
               response_id=None, response_model=None, output_messages=None,
               cache_read_tokens=None, cache_creation_tokens=None):
        for k, v in dict(locals()).items():
            if k != "self" and v is not None:
                self._result[k] = v
        return self

    def _end(self, h):
        r = _lib.ChatResult()
        _lib_handle.sidespan_chat_result_init_sized(ctypes.byref(r), ctypes.sizeof(r))
        keep = []
        for k, v in self._result.items():
            if k == "finish_reasons":
                arr = (ctypes.c_char_p * len(v))(*[_lib.enc(x) for x in v])
                keep.append(arr)
                r.finish_reasons, r.n_finish_reasons = arr, len(v)
            elif k in ("response_id", "response_model", "output_messages"):
                b = _lib.enc(v if isinstance(v, str) else json.dumps(v))
                keep.append(b)
                setattr(r, k, b)
            else:
                setattr(r, k, v)
        if self._error is not None:
            r.error = _lib.enc(self._error)
        _lib_handle.sidespan_chat_end(h, ctypes.byref(r))


class Tool(Span):
    """``tool.execute``: ``result(value, success=True)`` before the block ends."""

    _value = None
    _success = True

    def result(self, value=None, success=True):
        self._value, self._success = value, success
        return self

    def _end(self, h):
        v = self._value
        b = None if v is None else _lib.enc(v if isinstance(v, str) else json.dumps(v))
        ok = self._success and self._error is None
        _lib_handle.sidespan_tool_end(h, ok, b, time.monotonic() - self._t0)


# ---- the provider -------------------------------------------------------------------------


class TracingProvider:
    """A libsidespan client, with the settings and defaults of the reference
    framework's DefaultTracingProvider. ``endpoint`` is accepted for
    compatibility: where spans go is the daemon's setting, so it only warns."""

    def __init__(self, socket=None, service_name="upsonic", sample_rate=1.0,
                 include_content=True, flush_on_exit=True, endpoint=None,
                 resource_attributes=None, _from_env=False):
        self._c = None
        self._pid = os.getpid()
        if endpoint is not None:
            warnings.warn("sidespan: endpoint=%r is ignored: the sidespand daemon decides "
                          "where spans are exported (its --endpoint or "
                          "OTEL_EXPORTER_OTLP_ENDPOINT)" % (endpoint,), stacklevel=2)
        if _lib_handle is None:
            warnings.warn("sidespan: tracing disabled, libsidespan not loaded (%s); set "
                          "SIDESPAN_LIBRARY to its path" % _lib_error, stacklevel=2)
            return
        opts = _lib.Options()
        _lib_handle.sidespan_options_init_sized(ctypes.byref(opts), ctypes.sizeof(opts))
        self._keep = [_lib.enc(socket), _lib.enc(service_name)]
        opts.socket_path, opts.service_name = self._keep
        opts.sample_rate = float(sample_rate)
        opts.include_content = bool(include_content)
        opts.flush_on_exit = bool(flush_on_exit)
        if resource_attributes:
            arr, n = _attrs(resource_attributes, self._keep)
            self._keep.append(arr)
            opts.resource_attrs, opts.n_resource_attrs = arr, n
        c = ctypes.c_void_p()
        if _from_env:
            r = _lib_handle.sidespan_client_open_env_with(ctypes.byref(opts), False,
                                                          ctypes.byref(c))
        else:
            r = _lib_handle.sidespan_client_open(ctypes.byref(opts), ctypes.byref(c))
        if r < 0:
            warnings.warn("sidespan: tracing disabled: %s"
                          % _lib_handle.sidespan_strerror(r).decode(), stacklevel=2)
            return
        if r == _lib.OPEN_DISABLED:  # the environment leaves tracing off: a no-op client
            if c.value:
                _lib_handle.sidespan_client_close(ctypes.byref(c))
            return
        self._c = c if c.value else None

    @classmethod
    def from_env(cls):
        """Settings from the environment as libsidespan reads them
        (UPSONIC_OTEL_ENABLED, UPSONIC_OTEL_SERVICE_NAME, UPSONIC_OTEL_SAMPLE_RATE,
        OTEL_SERVICE_NAME, OTEL_SDK_DISABLED, SIDESPAN_SOCKET): off unless enabled."""
        return cls(service_name=None, sample_rate=1.0, _from_env=True)

    @property
    def enabled(self):
        return self._c is not None

    # -- spans

    def _start(self, cls, fn_name, parent, *args):
        """Start a span with the C function fn_name (which takes the client, the parent
        handle, args and the result pointer); a no-op span without a client."""
        if self._c is None:
            return cls(self, None)
        fn = getattr(_lib_handle, fn_name)
        if parent is None:
            parent = _current.get()
        ph = parent._h if isinstance(parent, Span) else None
        h = ctypes.c_void_p()
        if fn(self._c, ph, *args, ctypes.byref(h)) < 0 or not h.value:
            return cls(self, None)
        return cls(self, h)

    def span(self, name, kind="internal", attributes=None, parent=None):
        """A span of any name and kind ("internal", "server", "client", "producer",
        "consumer"), under parent or the current span."""
        s = self._start(Span, "sidespan_span_start", parent, _lib.enc(name),
                        _lib.KIND.get(kind, 1))
        return s.set_attributes(attributes)

    def continue_trace(self, traceparent, name, kind="server", attributes=None):
        """A span continuing an incoming W3C traceparent (a new trace when it is bad)."""
        if self._c is None:
            return Span(self, None)
        h = ctypes.c_void_p()
        r = _lib_handle.sidespan_span_start_remote(self._c, _lib.enc(traceparent),
                                                   _lib.enc(name), _lib.KIND.get(kind, 2),
                                                   ctypes.byref(h))
        return Span(self, h if r >= 0 and h.value else None).set_attributes(attributes)

    def agent_run(self, name, model=None, run_id=None, user_id=None, session_id=None,
                  input=None, parent=None):
        if self._c is None:
            return AgentRun(self, None)
        if parent is not None:
            # A run under another span: the generic API keeps the link.
            run = self._start(AgentRun, "sidespan_span_start", parent,
                              b"agent.run", _lib.KIND["server"])
            return run.set_attributes({"upsonic.agent.name": name, "upsonic.agent.model": model,
                                       "upsonic.run_id": run_id, "user.id": user_id,
                                       "session.id": session_id, "upsonic.input": input})
        h = ctypes.c_void_p()
        r = _lib_handle.sidespan_agent_run_start(
            self._c, _lib.enc(name), _lib.enc(model), _lib.enc(run_id), _lib.enc(user_id),
            _lib.enc(session_id), _lib.enc(input), ctypes.byref(h))
        return AgentRun(self, h if r >= 0 and h.value else None)

    def _pipeline(self, parent, total_steps, streaming):
        return self._start(Span, "sidespan_pipeline_start", parent, int(total_steps),
                           bool(streaming))

    def _step(self, parent, name, description):
        return self._start(Step, "sidespan_step_start", parent, _lib.enc(name),
                           _lib.enc(description))

    def _chat(self, parent, provider, model, temperature, max_tokens, top_p, server_address,
              server_port, input_messages, system_instructions):
        if self._c is None:
            return Chat(self, None)
        req = _lib.ChatRequest()
        _lib_handle.sidespan_chat_request_init_sized(ctypes.byref(req), ctypes.sizeof(req))
        if temperature is not None:
            req.temperature = float(temperature)
        if top_p is not None:
            req.top_p = float(top_p)
        if max_tokens is not None:
            req.max_tokens = int(max_tokens)
        if server_port is not None:
            req.server_port = int(server_port)
        keep = []
        for field, v in (("server_address", server_address),
                         ("input_messages", input_messages),
                         ("system_instructions", system_instructions)):
            if v is not None:
                b = _lib.enc(v if isinstance(v, str) else json.dumps(v))
                keep.append(b)
                setattr(req, field, b)
        return self._start(Chat, "sidespan_chat_start", parent, _lib.enc(provider),
                           _lib.enc(model), ctypes.byref(req))

    def _tool(self, parent, name, call_id, arguments):
        args = None if arguments is None else (
            arguments if isinstance(arguments, str) else json.dumps(arguments))
        return self._start(Tool, "sidespan_tool_start", parent, _lib.enc(name),
                           _lib.enc(call_id), _lib.enc(args))

    def trace(self, name=None, kind="internal"):
        """A decorator: each call of the function (sync or async) is a span."""
        def wrap(fn):
            span_name = name or fn.__qualname__
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def awrapper(*a, **kw):
                    with self.span(span_name, kind):
                        return await fn(*a, **kw)
                return awrapper

            @functools.wraps(fn)
            def wrapper(*a, **kw):
                with self.span(span_name, kind):
                    return fn(*a, **kw)
            return wrapper
        return wrap

    # -- the client

    @staticmethod
    def current_span():
        return _current.get()

    def traceparent(self):
        """The current span's traceparent, or None."""
        s = _current.get()
        return s.traceparent() if s is not None else None

    def flush(self, timeout=5.0):
        """Wait up to timeout seconds for the daemon to have every span sent so far.
        True when it confirmed them."""
        if self._c is None:
            return False
        return _lib_handle.sidespan_flush(self._c, max(0, int(timeout * 1000))) == 0

    def stats(self):
        """The C client's counters: spans_started, dropped, connected, ..."""
        if self._c is None:
            return {"enabled": False}
        st = _lib.Stats()
        _lib_handle.sidespan_stats_init_sized(ctypes.byref(st), ctypes.sizeof(st))
        _lib_handle.sidespan_client_stats(self._c, ctypes.byref(st))
        return {name: getattr(st, name) for name, _ in _lib.Stats._fields_ if name != "size"}

    def shutdown(self, timeout=2.0):
        """Flush (up to timeout seconds) and close; later calls do nothing."""
        c, self._c = self._c, None
        if c is not None:
            _lib_handle.sidespan_flush(c, max(0, int(timeout * 1000)))
            _lib_handle.sidespan_client_close(ctypes.byref(c))


# ---- the process-wide default -------------------------------------------------------------

_default = None
_default_lock = threading.Lock()


def default_provider():
    """The process-wide provider instrument_all() set up, or None."""
    return _default


def instrument_all():
    """Set up the process-wide provider from the environment (as the reference
    framework's instrument_all() does); returns it. Idempotent."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TracingProvider.from_env()
            atexit.register(_default.shutdown)
    return _default


if _env_bool("UPSONIC_OTEL_ENABLED"):
    instrument_all()
