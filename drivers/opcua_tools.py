"""`edge-agent opcua trust` and `edge-agent opcua browse`: what an integrator does before writing tags."""

from __future__ import annotations

__all__ = ["browse", "server_certificates"]

from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua

from drivers.opcua import _first_certificate, _plain
from edge_agent.config_models import OpcUaTagConfig


async def server_certificates(url: str, timeout_s: float = 5.0) -> list[tuple[str, bytes]]:
    """(policy/mode, certificate) of every secured endpoint the server offers."""
    endpoints = await Client(url, timeout=timeout_s).connect_and_get_server_endpoints()
    found = []
    for endpoint in endpoints:
        if endpoint.ServerCertificate:
            label = f"{endpoint.SecurityPolicyUri.rsplit('#', 1)[-1]}/{endpoint.SecurityMode.name}"
            found.append((label, _first_certificate(endpoint.ServerCertificate)))
    return found


@dataclass
class BrowsedNode:
    node_id: str
    browse_name: str
    node_class: str
    data_type: str | None
    value: Any


async def browse(url: str, start: str | None, timeout_s: float = 5.0) -> list[BrowsedNode]:
    """Children of a node (default Objects) with NodeIds, data types and current values.

    Browsing is read-only and runs without security, as discovery does; servers that refuse
    anonymous unsecured sessions need their own browse tool.
    """
    client = Client(url, timeout=timeout_s)
    async with client:
        parent = client.get_node(start) if start else client.nodes.objects
        children = []
        for child in await parent.get_children():
            node_class = await child.read_node_class()
            data_type = value = None
            if node_class == ua.NodeClass.Variable:
                data_value = await child.read_data_value(raise_on_bad_status=False)
                type_id = await child.read_data_type()
                data_type = (await client.get_node(type_id).read_browse_name()).Name
                value = _plain(
                    data_value.Value.Value if data_value.Value else None, OpcUaTagConfig(node="i=1")
                )
            name = await child.read_browse_name()
            children.append(
                BrowsedNode(
                    child.nodeid.to_string(),
                    f"{name.NamespaceIndex}:{name.Name}",
                    node_class.name,
                    data_type,
                    value,
                )
            )
        return children
