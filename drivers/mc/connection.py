"""One TCP connection to a PLC's MC protocol port: a request out, its answer in, one at a time.

A 3E frame carries no serial number, so an answer can only be matched to its request by order:
exactly one request is in flight, and after any failure (timeout, a peer that closes, bytes
that are not an answer) the connection is dropped, since whatever arrives on it next might be
the late answer to the request that failed.
"""

from __future__ import annotations

__all__ = ["McConnection"]

import asyncio
import contextlib

from drivers.mc.frame import HEADER_SIZE, FrameError, read_header, split_body
from edge_agent.errors import ConnectError


class McConnection:
    """A connection opened on demand, dropped on any failure; `exchange` raises ConnectError."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.endpoint = f"{host}:{port}"
        self._host, self._port = host, port
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def is_open(self) -> bool:
        """Open, and not closed by the PLC since (an idle timeout, a restart): asyncio keeps a
        half-closed connection open, and the next request on it would fail."""
        return (
            self._writer is not None
            and not self._writer.is_closing()
            and not (self._reader is not None and self._reader.at_eof())
        )

    async def open(self) -> None:
        await self.close()
        try:
            async with asyncio.timeout(self._timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        except TimeoutError:
            raise ConnectError(f"cannot connect to {self.endpoint}: no answer (timeout)") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.endpoint}: {_reason(exc)}") from None

    async def exchange(self, frame: bytes, expected_data: int, what: str) -> tuple[int, bytes]:
        """Send `frame`, return the answer's end code and data; ConnectError if the link failed.

        `expected_data` is the size of a good answer's data; `what` names the request in messages.
        """
        if not self.is_open:
            await self.open()
        assert self._reader is not None and self._writer is not None
        received = 0
        try:
            async with asyncio.timeout(self._timeout_s):
                self._writer.write(frame)
                await self._writer.drain()
                header = await self._reader.readexactly(HEADER_SIZE)
                received = HEADER_SIZE
                length = read_header(header, expected_data)
                return split_body(await self._reader.readexactly(length), expected_data)
        except TimeoutError:
            problem = f"no answer within {self._timeout_s:g} s (timeout)"
        except asyncio.IncompleteReadError as exc:
            received += len(exc.partial)
            problem = "the PLC closed the connection " + (
                f"after {received} bytes of an answer" if received else "without answering"
            )
        except FrameError as exc:
            problem = f"malformed answer: {exc}"
        except OSError as exc:
            problem = _reason(exc)
        except BaseException:  # cancelled mid-request: its answer may still come on this socket
            self._abort()
            raise
        await self.close()
        raise ConnectError(f"{self.endpoint}: {what}: {problem}")

    async def close(self) -> None:
        writer = self._abort()
        if writer is None:
            return
        # A peer that never acknowledges the close must not hold the poll up.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(self._timeout_s):
                await writer.wait_closed()

    def _abort(self) -> asyncio.StreamWriter | None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
        return writer


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
