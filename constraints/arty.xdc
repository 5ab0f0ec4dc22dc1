# Arty A7-35T (xc7a35ticsg324-1L): the ports of firstspike_board.
# Pins from amaranth-boards' ArtyA7_35Platform: clk100 E3, uart rx A9 / tx D10 (the FTDI),
# led 0 H5.
set_property -dict { PACKAGE_PIN E3  IOSTANDARD LVCMOS33 } [get_ports clk]
create_clock -name clk -period 10.000 [get_ports clk]
set_property -dict { PACKAGE_PIN A9  IOSTANDARD LVCMOS33 } [get_ports rx]
set_property -dict { PACKAGE_PIN D10 IOSTANDARD LVCMOS33 } [get_ports tx]
set_property -dict { PACKAGE_PIN H5  IOSTANDARD LVCMOS33 } [get_ports led]
set_property CFGBVS VCCO [current_design]
set_property CONFIG_VOLTAGE 3.3 [current_design]
