"""`edge-agent opcua trust` and `edge-agent opcua browse`: what an integrator does before writing tags."""

from __future__ import annotations

__all__ = ["BrowseError", "BrowsedNode", "browse", "server_certificates"]

import re
from dataclasses import dataclass
from typing import Any

from asyncua import Client, Node, ua

from drivers.opcua.config import OpcUaTagConfig
from drivers.opcua.driver import _NSU, _first_certificate, _plain

_NODE_ID = re.compile(r"^(ns=\d+;)?[isgb]=")


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
    node_id: str  # nsu=<uri>;… (the form a configuration should use), or i=… in namespace 0
    path: str  # browse names from the start node: 2:Press/2:Temperature
    node_class: str
    data_type: str | None
    value: Any


class BrowseError(Exception):
    """What to tell the person browsing: a start node that does not exist, and the like."""


async def browse(
    client: Client, start: str | None, *, depth: int = 1, limit: int = 2000
) -> list[BrowsedNode]:
    """The nodes below `start` (default Objects), `depth` levels down, at most `limit` of them.

    `start` is a NodeId (`nsu=<uri>;s=…`, `ns=2;s=…`, `i=85`) or a browse path from Objects
    (`2:Press`, `2:Press/2:Motor`). Below the first level only the server's own namespaces are
    followed: namespace 0 under Objects is the server's diagnostics, hundreds of nodes.
    """
    namespaces = await client.get_namespace_array()
    node = await _start_node(client, start, namespaces)
    found: list[BrowsedNode] = []
    level: list[tuple[Node, str]] = [(node, "")]
    for down in range(depth):
        below: list[tuple[Node, str]] = []
        for parent, path in level:
            for child in await parent.get_children():
                if down > 0 and child.nodeid.NamespaceIndex == 0:
                    continue
                entry = await _describe(client, child, path, namespaces)
                found.append(entry)
                if len(found) >= limit:
                    return found
                if entry.node_class == "Object":
                    below.append((child, entry.path))
        level = below
    return found


async def _start_node(client: Client, start: str | None, namespaces: list[str]) -> Node:
    if not start:
        return client.nodes.objects
    try:
        if (match := _NSU.match(start)) is not None:
            uri, rest = match.groups()
            if uri not in namespaces:
                known = ", ".join(namespaces[1:]) or "none"
                raise BrowseError(f"the server has no namespace {uri} (it has: {known})")
            node = client.get_node(f"ns={namespaces.index(uri)};{rest}")
        elif _NODE_ID.match(start):
            node = client.get_node(start)
        else:
            node = await client.nodes.objects.get_child(start.strip("/").split("/"))
        await node.read_browse_name()  # a NodeId is only checked when used
    except ua.UaStatusCodeError as exc:
        code = ua.StatusCode(exc.code).name
        raise BrowseError(f"no node {start} on this server ({code})") from None
    except ValueError as exc:
        raise BrowseError(f"{start} is not a NodeId or a browse path ({exc})") from None
    return node


async def _describe(client: Client, node: Node, path: str, namespaces: list[str]) -> BrowsedNode:
    name = await node.read_browse_name()
    node_class = await node.read_node_class()
    data_type = value = None
    if node_class == ua.NodeClass.Variable:
        data_value = await node.read_data_value(raise_on_bad_status=False)
        type_id = await node.read_data_type()
        data_type = (await client.get_node(type_id).read_browse_name()).Name
        raw = data_value.Value.Value if data_value.Value else None
        value = _plain(raw, OpcUaTagConfig(node="i=1"))
    step = f"{name.NamespaceIndex}:{name.Name}"
    return BrowsedNode(
        _nsu(node.nodeid, namespaces),
        f"{path}/{step}" if path else step,
        node_class.name,
        data_type,
        value,
    )


def _nsu(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """`nsu=<uri>;s=…`: unlike `ns=2;…` it stays right when the server renumbers namespaces."""
    text = node_id.to_string()
    index = node_id.NamespaceIndex
    if index == 0 or index >= len(namespaces):
        return text
    return f"nsu={namespaces[index]};{text.split(';', 1)[1]}"
