"""Simulating the generated Verilog: the cocotb testbench and the runner that drives it."""
