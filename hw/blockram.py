"""Block RAM placed by hand where the generic memory leaves speed behind: ECP5's ``DP16KD``
read through its own output register.

Yosys maps every Amaranth memory onto ``DP16KD`` without the block's output register
(``REGMODE "NOREG"``): a read's data leaves the block 6.1 ns after the clock (speed grade
6), and the register that holds it sits in the fabric, a route away. With ``"OUTREG"`` the
block holds the data itself and hands it out a cycle later, early in that cycle: the same
two cycles from address to data as a read port with a register behind it, without the
block's slow output and the route in one cycle.

:class:`Fabric` names the family Verilog is generated for; it reaches ``elaborate`` as the
platform, and a memory that has a faster form on that family builds it. Simulation of the
RTL uses the generic form; the ECP5 netlist simulation (``hw/sim/native.py``) runs this one
through a model of the block in both register modes.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Fabric", "fabric_family", "RegisteredBlockRAM", "DP16KD_ROWS", "row_memory_signature"]

#: The deepest a ``DP16KD`` goes, at 9 bits a row (1,024 at 18).
DP16KD_ROWS = 2048


@dataclass(frozen=True)
class Fabric:
    """The FPGA family generated Verilog is for (``ecp5``, ``ice40``), given to ``elaborate``
    as its platform (the core asks nothing else of a platform)."""

    family: str


def fabric_family(platform) -> str | None:
    """The family ``platform`` (a :class:`Fabric`, an Amaranth platform or None) is."""
    return getattr(platform, "family", None)


def row_memory_signature(width: int, depth: int) -> wiring.Signature:
    """A memory of ``depth`` rows of ``width`` bits with a read port and a write port."""
    return wiring.Signature({
        "read_addr": In(range(max(2, depth))),
        "read_data": Out(width),
        "write_addr": In(range(max(2, depth))),
        "write_data": In(width),
        "write_en": In(1),
    })


def block_data_width(depth: int) -> int:
    """The ``DP16KD`` mode for ``depth`` rows: 36 bits (pseudo dual port) to 512 rows, 18 to
    1,024, 9 to 2,048."""
    if not 0 < depth <= DP16KD_ROWS:
        raise ValueError(f"a DP16KD holds 1 to {DP16KD_ROWS} rows, not {depth}")
    return 36 if depth <= 512 else 18 if depth <= 1024 else 9


def dp16kd_initvals(column: list[int], data_width: int) -> dict[str, int]:
    """``INITVAL_00`` ... ``INITVAL_3F`` (the nonzero ones) of a block holding ``column``
    (a value of ``data_width`` bits a row): sixteen 18-bit words a parameter, each at the low
    end of a 20-bit slot; at 9 bits, two rows a word, the even row low; at 36, a row two
    words, the low half first (as Yosys writes them)."""
    if data_width == 36:
        column = [half for value in column for half in (value & 0x3FFFF, value >> 18)]
        data_width = 18
    per_word = 18 // data_width
    words = [0] * 1024
    for row, value in enumerate(column):
        words[row // per_word] |= value << (row % per_word * data_width)
    values: dict[str, int] = {}
    for index in range(64):
        value = sum(word << (slot * 20) for slot, word in enumerate(words[index * 16:index * 16 + 16]))
        if value:
            values[f"INITVAL_{index:02X}"] = value
    return values


class RegisteredBlockRAM(wiring.Component):
    """``depth`` (≤ 2,048) rows of ``width`` bits in ``DP16KD`` blocks side by side: write
    port A, read port B through the block's output register, so a row is on ``read_data``
    two cycles after its address was on ``read_addr``. No reset of the data read.

    At 36 bits (up to 512 rows) a block is pseudo dual port, as Yosys lays out such a
    memory: port A writes ``{DIB, DIA}`` (address bits 3:0 its byte enables), port B reads
    ``{DOB, DOA}``, both halves through their port's output register."""

    def __init__(self, width: int, depth: int, init: list[int] | tuple[int, ...] = ()):
        self.width, self.depth, self.init = width, depth, list(init)
        self.data_width = block_data_width(depth)
        super().__init__(row_memory_signature(width, depth))

    @property
    def blocks(self) -> int:
        return -(-self.width // self.data_width)

    def elaborate(self, platform):
        m = Module()
        step = self.data_width
        shift = {9: 3, 18: 4, 36: 5}[step]  # the address's place in the 14 address pins
        read_addr, write_addr = Signal(14), Signal(14)
        m.d.comb += [read_addr.eq(self.read_addr << shift), write_addr.eq(self.write_addr << shift)]
        wide = step == 36
        # The low address pins are a write's byte enables at 18 bits (write enable WEA) and
        # at 36, where they are the write's only enable (WEA tied high, as Yosys does).
        if step >= 18:
            m.d.comb += write_addr[:step // 9].eq(Mux(self.write_en, -1, 0) if wide else -1)
        for block in range(self.blocks):
            low, high = block * step, min(self.width, (block + 1) * step)
            column = [(row >> low) & ((1 << (high - low)) - 1) for row in self.init]
            data_in, data_out = Signal(36, name=f"block{block}_di"), Signal(36, name=f"block{block}_do")
            m.d.comb += [data_in.eq(self.write_data[low:high]), self.read_data[low:high].eq(data_out)]
            initvals = {f"p_{name}": Const(value, 320) for name, value in dp16kd_initvals(column, step).items()}
            # At 36 bits a read's low half leaves on port A's pins, through port A's register.
            reads = {f"o_DOA{k}": data_out[k] for k in range(18)} if wide else {}
            reads |= {f"o_DOB{k}": data_out[k + 18 if wide else k] for k in range(18)}
            m.submodules[f"block{block}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=step, p_DATA_WIDTH_B=step, p_REGMODE_A="OUTREG" if wide else "NOREG",
                p_REGMODE_B="OUTREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED", **initvals,
                i_CLKA=ClockSignal(), i_CEA=1, i_OCEA=1, i_WEA=1 if wide else self.write_en, i_RSTA=0,
                i_CLKB=ClockSignal(), i_CEB=1, i_OCEB=1, i_WEB=0, i_RSTB=0,
                **{f"i_CS{port}{k}": 0 for port in "AB" for k in range(3)},
                **{f"i_ADA{k}": write_addr[k] for k in range(14)},
                **{f"i_ADB{k}": read_addr[k] for k in range(14)},
                **{f"i_DIA{k}": data_in[k] for k in range(18)},
                **{f"i_DIB{k}": data_in[k + 18] if wide else 0 for k in range(18)},
                **reads,
            )
        return m
