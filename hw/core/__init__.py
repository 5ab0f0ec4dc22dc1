"""The TTFS core (:class:`TTFSCore`) and its ports' payloads."""

from .layouts import event_layout, read_layout, result_layout, trace_layout, write_layout
from .top import TTFSCore

__all__ = ["TTFSCore", "event_layout", "result_layout", "trace_layout", "write_layout", "read_layout"]
