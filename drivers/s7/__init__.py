"""Siemens S7 driver (S7comm over ISO-on-TCP, port 102), read-only.

address.py  DB1.DBW2, MW20, I0.0 … and the types they hold → where the bytes are
config.py   S7DeviceConfig, S7TagConfig (driver: s7)
plan.py     tags → merged ranges → items and requests within the negotiated PDU
wire.py     the "read variable" job and its answer, item by item
codec.py    bytes ↔ values
driver.py   S7Driver, on python-snap7's asyncio client
sim.py      the simulated press on python-snap7's S7 server

Importing this package loads neither python-snap7 nor the driver: the configuration models
are needed where no PLC is read (validate, schema, docs).
"""

# The configuration schema (edge_agent.config_models) includes config.py's models, which build on
# the schema's base types. Loading the schema first, before any module of this package, lets
# either be imported first without a circular import.
import edge_agent.config_models  # noqa: F401
