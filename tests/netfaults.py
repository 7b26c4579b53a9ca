"""Network faults made inside a test (these machines have neither netem nor iptables).

``TcpCut`` stands between a client and a TCP server (the app and PostgreSQL) and can cut the
link two ways: ``reset`` (open connections get a RST and new ones are refused, as when the
database restarts) or ``stall`` (open connections go silent for good and new ones are accepted
but never answered, as when its host drops off the network without a word).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class TcpCut:
    """A loopback TCP proxy to ``upstream`` whose link can be cut and restored."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._up = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        #: Writers of stalled connections: whatever reaches them is dropped, forever.
        self._dead: set[asyncio.StreamWriter] = set()
        self.mode = ""
        self.port = 0
        self.down = False
        #: Connections refused while the link was cut (proof the client kept trying).
        self.refused = 0

    async def start(self) -> None:
        """Listen on a free loopback port (``self.port``)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self, mode: str = "reset") -> None:
        """Cut the link until ``restore``: ``reset`` or ``stall`` the open connections.

        Connections stalled earlier stay stalled whatever comes next (their peer is gone).
        """
        assert mode in ("reset", "stall")
        self.down, self.mode = True, mode
        live = self._links - self._dead
        if mode == "stall":
            self._dead |= live
            return
        for w in live:
            _reset(w)
        self._links -= live

    def restore(self) -> None:
        """Let new connections through again."""
        self.down = False

    async def close(self) -> None:
        """Stop listening and reset what is still open."""
        self._dead.clear()
        self.cut("reset")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.refused += 1
            if self.mode == "reset":
                _reset(writer)
                return
            # A silent host: the client's connect or first query hangs until its own timeout.
            self._links.add(writer)
            self._dead.add(writer)
            with contextlib.suppress(OSError):
                while await reader.read(65536):
                    pass
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._up)
        except OSError:
            _reset(writer)
            return
        self._links |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, writer), self._pipe(up_reader, writer, up_writer)
            )
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                self._dead.discard(w)
                _reset(w)

    async def _pipe(
        self, reader: asyncio.StreamReader, to: asyncio.StreamWriter, own: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if to in self._dead or own in self._dead:
                    continue  # stalled: swallowed, neither answered nor reset
                to.write(data)
                await to.drain()
        if to not in self._dead:
            _reset(to)


def _reset(writer: asyncio.StreamWriter) -> None:
    # SO_LINGER 0: close with a RST, as a dead peer's kernel answers, not a polite FIN.
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.fileno() >= 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
