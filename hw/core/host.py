"""Host access to the memories between inferences: rows written (a model loaded at run
time) and rows read back (to verify a load)."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal

from firstspike.sw.layout import Target

__all__ = ["host_reads", "host_writes"]


def host_reads(m: Module, *, read, read_data, idle: Signal, starting: Signal, weights_r, thresholds_r,
               initial_r, weight_latency: int = 1) -> Signal:
    """A row of weights, thresholds or initial potentials onto ``read_data``. It borrows the
    pipeline's read ports, so it is taken only while the sequencer is idle; its address goes
    to the ports from a register the cycle after (assigned after stage 1's, it wins), so no
    path runs from the requester into the memories' addresses. A weight row comes
    ``weight_latency`` cycles after its address, the others' one. Returns a signal that is
    high from the request's cycle until its row is out of the ports: the sequencer must not
    start an inference meanwhile. A request is taken only while no inference is
    ``starting`` (an input event waits), so that signal is registers only: the sequencer's
    start does not wait on the requester's logic."""
    payload = read.payload
    asked = Signal()  # a request taken last cycle: its address is on the ports now
    address = Signal.like(payload.address)
    reading = [Signal(name=f"host_reading_{k}") for k in range(weight_latency)]  # cycles since the address
    read_target = Signal(2)
    held = Signal.like(thresholds_r.data)  # a threshold or initial row, a cycle after its address
    busy = Signal()
    m.d.comb += read.ready.eq(idle & ~starting & ~asked & ~Cat(*reading).any() & ~read_data.valid)
    m.d.comb += busy.eq(asked | Cat(*reading).any())
    with m.If(read.valid & read.ready):
        m.d.sync += [address.eq(payload.address), read_target.eq(payload.target)]
    with m.If(asked):
        m.d.comb += [weights_r.addr.eq(address), thresholds_r.addr.eq(address), initial_r.addr.eq(address)]
    m.d.sync += [asked.eq(read.valid & read.ready), reading[0].eq(asked),
                 *(later.eq(now) for now, later in zip(reading, reading[1:]))]
    neuron_row = Mux(read_target == Target.THRESHOLDS, thresholds_r.data, initial_r.data)
    with m.If(reading[0]):
        m.d.sync += held.eq(neuron_row)
    with m.If(read_data.ready):
        m.d.sync += read_data.valid.eq(0)
    with m.If(reading[-1]):
        m.d.sync += [read_data.valid.eq(1),
                     read_data.payload.eq(Mux(read_target == Target.WEIGHTS, weights_r.data,
                                              held if weight_latency > 1 else neuron_row))]
    return busy


def host_writes(m: Module, *, write, weights_w, thresholds_w, initial_w) -> Signal:
    """Rows from ``write`` into the memory its target names (``write.ready`` is the
    sequencer's: idle only), through a register: a row lands a cycle after it is taken, so
    no path runs from the row mover's logic into the memories' write ports (on the ULX3S the
    distributed RAMs' write data were a near-longest path). Returns a signal high while a
    row is on its way: the sequencer must not start an inference meanwhile."""
    payload = write.payload
    staged = Signal.like(payload)
    landing = Signal()
    m.d.sync += [staged.eq(payload), landing.eq(write.valid & write.ready)]
    for port, target in ((weights_w, Target.WEIGHTS), (thresholds_w, Target.THRESHOLDS),
                         (initial_w, Target.INITIAL_POTENTIALS)):
        m.d.comb += [port.addr.eq(staged.address), port.data.eq(staged.data),
                     port.en.eq(landing & (staged.target == target))]
    return landing
