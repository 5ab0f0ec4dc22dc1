"""A wide, deep memory read through registers, for fast clocks: the weight rows.

One Amaranth memory of many block RAMs reads through the multiplexer Yosys builds to join
them, in the same cycle as the block RAMs' own clock-to-output delay (5.8 ns on an ECP5,
before the routing across the die): it bounds the clock near 50 MHz. Here the memory is
banks of :data:`BANK_ROWS` rows, each bank's output has a register, and the choice between
them another: no path has more than one of those delays.

The address, too, reaches the block RAMs from a register of each bank's own, loaded only
when a read is for that bank: the address is worked out (a row plus a fold) in front of
~30 block RAMs a bank, spread over the die, and that sum and its fan-out in one cycle
were the ULX3S build's longest path. Distinct load enables keep Yosys from merging the
banks' registers into one. A row comes :attr:`BankedMemory.latency` cycles after its address. A
write goes through registers of the bank's own as well (at P = 128 the host's write, from
the link's row mover to the enables of 114 block RAMs a bank, was the longest path: 31 ns,
30 of it routing); it lands a cycle after it is offered, long before an inference or a
host read that follows it reaches the blocks.

A bank is as deep as a DP16KD goes (2,048 rows at 9 bits), so Yosys lays each row across
side-by-side blocks with no multiplexer inside a bank, and the choice spans few banks.
Banks of 512 rows (the depth at 36 bits) made the ULX3S CNN build's choice 20 ways of 256
bits, gathered from block RAMs all over the die: its routing did not converge in an hour.

Generated for the ECP5 (:class:`~firstspike.hw.blockram.Fabric`), a bank is
:class:`~firstspike.hw.blockram.RegisteredBlockRAM`: the bank's output register is the block
RAMs' own, so no route lies between a block's slow output and the register it feeds. Only
where that takes no more blocks than Yosys's layout (:func:`fills_its_blocks`), or P = 128
would not fit the 85F's 208 block RAMs: a short last bank of up to 512 rows is laid out at
36 bits a block, as Yosys would; one a little over 512 or 1,024 rows stays the generic
memory. (A short last bank without its blocks' register was the 89.4 MHz ULX3S build's
longest path: 5.8 ns out of the block, 5.1 across the die.)

Where the choice spans more than :data:`~firstspike.sw.cycles.WIDE_CHOICE` banks (two LUT
levels, not one), each bank's output goes through a register more before it: a block RAM
across the die from the choice was the 95.4 MHz ULX3S build's longest path (6.7 ns of
routing, then the choice's two LUTs with 2.2 ns between them). It costs a cycle of weight
latency (:func:`~firstspike.sw.cycles.stepped_weight_read`, in the contract) only there.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Module, Signal, unsigned
from amaranth.lib import memory, wiring

from firstspike.sw.cycles import STEPPED_WEIGHT_READ, WEIGHT_BANK_ROWS, weight_read_latency

from .blockram import DP16KD_ROWS, RegisteredBlockRAM, fabric_family, row_memory_signature

__all__ = ["BANK_ROWS", "BankedMemory", "PortView", "fills_its_blocks"]

BANK_ROWS = DP16KD_ROWS
assert BANK_ROWS == WEIGHT_BANK_ROWS
# The bank's address register, the block RAM, its bank's register, the choice's register.
assert STEPPED_WEIGHT_READ == 4


def fills_its_blocks(rows: int) -> bool:
    """Whether ``DP16KD`` blocks laid out by hand for ``rows`` take no more of them than Yosys
    would: up to 512 rows both lay them out at 36 bits; above, the hand's 1,024 rows at 18
    bits or 2,048 at 9 must be three quarters full (Yosys packs the rest of a bank into
    narrower, deeper blocks)."""
    return rows <= BANK_ROWS // 4 or rows > 3 * BANK_ROWS // 4 or 3 * BANK_ROWS // 8 < rows <= BANK_ROWS // 2


@dataclass(frozen=True)
class PortView:
    """A :class:`BankedMemory`'s read or write side under a memory port's names."""

    addr: Signal
    data: Signal
    en: Signal | None = None


class BankedMemory(wiring.Component):
    """``depth`` rows of ``width`` bits: a read port (``read_addr`` in, the row on
    ``read_data`` :attr:`latency` cycles later) and a write port (``write_en``)."""

    def __init__(self, width: int, depth: int, init: list[int] | tuple[int, ...] = ()):
        self.width, self.depth, self.init = width, depth, list(init)
        super().__init__(row_memory_signature(width, depth))

    @property
    def reader(self) -> PortView:
        return PortView(self.read_addr, self.read_data)

    @property
    def writer(self) -> PortView:
        return PortView(self.write_addr, self.write_data, self.write_en)

    @property
    def banks(self) -> int:
        return -(-self.depth // BANK_ROWS)

    @property
    def latency(self) -> int:
        return weight_read_latency(self.banks)

    @property
    def staged(self) -> bool:
        """Whether each bank's output is registered once more before the choice."""
        return self.latency > STEPPED_WEIGHT_READ

    def elaborate(self, platform):
        m = Module()
        outputs = []
        for bank in range(self.banks):
            rows = min(BANK_ROWS, self.depth - bank * BANK_ROWS)
            init = self.init[bank * BANK_ROWS:bank * BANK_ROWS + rows]
            registered = fabric_family(platform) == "ecp5" and fills_its_blocks(rows)
            if registered:
                m.submodules[f"bank{bank}"] = ram = RegisteredBlockRAM(self.width, rows, init)
                read = PortView(ram.read_addr, ram.read_data)
                write = PortView(ram.write_addr, ram.write_data, ram.write_en)
            else:
                m.submodules[f"bank{bank}"] = mem = memory.Memory(shape=unsigned(self.width), depth=rows, init=init)
                read, write = mem.read_port(), mem.write_port()
            address = Signal(range(max(2, rows)), name=f"bank{bank}_addr")
            with m.If(self.read_addr // BANK_ROWS == bank if self.banks > 1 else 1):
                m.d.sync += address.eq(self.read_addr % BANK_ROWS)
            ours = self.write_addr // BANK_ROWS == bank if self.banks > 1 else 1
            # A write, too, reaches the blocks from registers of the bank's own (loaded only
            # for that bank, so they stay apart): it lands a cycle after it is offered.
            write_address = Signal(range(max(2, rows)), name=f"bank{bank}_write_addr")
            write_data = Signal(self.width, name=f"bank{bank}_write_data")
            write_en = Signal(name=f"bank{bank}_write_en")
            m.d.sync += write_en.eq(self.write_en & ours)
            with m.If(self.write_en & ours):
                m.d.sync += [write_address.eq(self.write_addr % BANK_ROWS), write_data.eq(self.write_data)]
            m.d.comb += [read.addr.eq(address), write.addr.eq(write_address), write.data.eq(write_data),
                         write.en.eq(write_en)]
            if registered:  # two cycles from the address register, like the port and register below
                out = read.data
            else:
                out = Signal(self.width, name=f"bank{bank}_out")
                m.d.sync += out.eq(read.data)
            if self.staged:
                staged = Signal(self.width, name=f"bank{bank}_staged")
                m.d.sync += staged.eq(out)
                out = staged
            outputs.append(out)
        # The bank a read chose, alongside its data.
        chosen = [Signal(range(max(2, self.banks)), name=f"chosen_{stage}") for stage in range(self.latency - 1)]
        m.d.sync += [chosen[0].eq(self.read_addr // BANK_ROWS),
                     *(later.eq(now) for now, later in zip(chosen, chosen[1:]))]
        m.d.sync += self.read_data.eq(Array(outputs)[chosen[-1]])
        return m
