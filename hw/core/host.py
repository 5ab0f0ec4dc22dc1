"""Host access to the memories between inferences: rows written (a model loaded at run
time) and rows read back (to verify a load)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal

from firstspike.sw.layout import Target

__all__ = ["host_reads", "host_writes"]


def host_reads(m: Module, *, read, read_data, idle: Signal, weights_r, thresholds_r, initial_r) -> None:
    """A row of weights, thresholds or initial potentials onto ``read_data``. It borrows the
    pipeline's read ports, so it is taken only while the sequencer is idle (and its
    addresses, assigned after stage 1's, win)."""
    payload = read.payload
    reading = Signal()        # the row's data arrives from the read port this cycle
    read_target = Signal(2)
    m.d.comb += read.ready.eq(idle & ~reading & ~read_data.valid)
    with m.If(read.valid & read.ready):
        m.d.comb += [weights_r.addr.eq(payload.address), thresholds_r.addr.eq(payload.address),
                     initial_r.addr.eq(payload.address)]
    m.d.sync += [reading.eq(read.valid & read.ready), read_target.eq(payload.target)]
    with m.If(read_data.ready):
        m.d.sync += read_data.valid.eq(0)
    with m.If(reading):
        m.d.sync += [read_data.valid.eq(1),
                     read_data.payload.eq(Mux(read_target == Target.WEIGHTS, weights_r.data,
                                              Mux(read_target == Target.THRESHOLDS, thresholds_r.data,
                                                  initial_r.data)))]


def host_writes(m: Module, *, write, weights_w, thresholds_w, initial_w) -> None:
    """Rows from ``write`` into the memory its target names (``write.ready`` is the
    sequencer's: idle only)."""
    payload = write.payload
    accept = write.valid & write.ready
    for port, target in ((weights_w, Target.WEIGHTS), (thresholds_w, Target.THRESHOLDS),
                         (initial_w, Target.INITIAL_POTENTIALS)):
        m.d.comb += [port.addr.eq(payload.address), port.data.eq(payload.data),
                     port.en.eq(accept & (payload.target == target))]
