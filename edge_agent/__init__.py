"""Shop-floor edge agent: poll PLCs, compute OEE and alarms, deliver to MQTT and InfluxDB."""

__version__ = "0.1.0"
