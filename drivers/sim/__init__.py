"""Simulated machines served over real Modbus sockets, for the demo and the tests."""
