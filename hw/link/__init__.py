"""The host link in gateware: a UART and the framed protocol of docs/protocol.md."""
