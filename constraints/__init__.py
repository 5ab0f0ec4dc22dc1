"""Pin and clock constraints for the boards (see README.md in this folder)."""
