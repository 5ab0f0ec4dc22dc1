"""Wrappers that state properties of a design's ports (the stream rules of amaranth.lib.stream)."""

from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, ResetSignal, Signal, Value
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import stream
from amaranth.lib.wiring import Flow

__all__ = ["StreamRules", "stream_rules_of"]


class StreamRules(Elaboratable):
    """``dut`` with its input streams assumed to obey the stream rules and its output
    streams asserted to: once ``valid`` is up, ``valid`` and ``payload`` hold until ``ready``
    (out of reset, which the design starts from). A cover asks for an output stalled while
    valid, so the assertion is not vacuous."""

    def __init__(self, dut, inputs: list, outputs: list, memories: list = (), steady: list = ()):
        """``memories``: ``(address, data)`` or ``(address, data, latency)`` of a synchronous
        memory's read port the design reads, ``data`` ``latency`` cycles (1 unless given)
        after ``address`` (the same address read twice in a row gives the same data);
        ``steady``: inputs that hold their value (configuration)."""
        self.dut, self.inputs, self.outputs = dut, inputs, outputs
        self.memories, self.steady = list(memories), list(steady)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        started = Signal()
        m.d.sync += started.eq(1)
        # A reset may drop any stream: the rules are about a design running.
        m.d.comb += Assume(~ResetSignal())
        for port, rule in [(p, Assume) for p in self.inputs] + [(p, Assert) for p in self.outputs]:
            held, payload = Signal(), Signal.like(port.payload)
            m.d.sync += [held.eq(port.valid & ~port.ready), payload.eq(port.payload)]
            with m.If(started & held):
                m.d.comb += rule(port.valid & (Value.cast(port.payload) == Value.cast(payload)))
        for address, data, *rest in self.memories:
            latency = rest[0] if rest else 1
            # the addresses of the last latency + 1 cycles, the latest first
            past = [Signal.like(address, name=f"address_{n + 1}_ago") for n in range(latency + 1)]
            last_data = Signal.like(data)
            m.d.sync += [past[0].eq(address), *(later.eq(earlier) for earlier, later in zip(past, past[1:])),
                         last_data.eq(data)]
            seen = Signal(latency)
            m.d.sync += seen.eq(Cat(started, seen[:-1]))
            with m.If(seen[-1] & (past[-2] == past[-1])):
                m.d.comb += Assume(data == last_data)
        for value in self.steady:
            last_value = Signal.like(value)
            m.d.sync += last_value.eq(value)
            with m.If(started):
                m.d.comb += Assume(value == last_value)
        for port in self.outputs:
            stalled = Signal()
            m.d.sync += stalled.eq(port.valid & ~port.ready)
            m.d.comb += Cover(started & stalled & port.valid)
        return m


def stream_rules_of(dut, *, memories: list = (), steady: list = ()) -> tuple[StreamRules, list]:
    """:class:`StreamRules` over every ``lib.stream`` port of ``dut`` (inputs assumed,
    outputs asserted) and the ports that become the proof's free inputs and outputs."""
    inputs, outputs, ports = [], [], []
    for name, member in dut.signature.members.items():
        port = getattr(dut, name)
        if member.is_signature and isinstance(member.signature, stream.Signature):
            (inputs if member.flow is Flow.In else outputs).append(port)
            ports += [port.valid, port.ready, Value.cast(port.payload)]
        elif member.is_port:
            ports.append(port)
    return StreamRules(dut, inputs, outputs, memories, steady), ports
