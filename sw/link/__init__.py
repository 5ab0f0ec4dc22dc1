"""The host link's wire format, shared by the driver, the emulator and the gateware:
CRC, framing, messages and the spike-time encoding (docs/protocol.md)."""
