"""The pure compute core: samples and time in, records out; no I/O, no clock of its own."""
