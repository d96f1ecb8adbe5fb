"""TensorBoard scalar event files, written with the standard library alone.

TensorBoard reads ``events.out.tfevents.*`` files: TFRecord framing around serialized
``tensorflow.Event`` protocol buffers. Scalars need three small messages, so they are encoded
here directly. The usual TensorFlow-free writer, ``tensorboardX``, imports PyTorch when it is
installed (about 4 s before the first step of every run) and sets ``CRC32C_SW_MODE`` in the
process environment; this module does neither.

The messages (from ``tensorboard/compat/proto/event.proto`` and ``summary.proto``):
``Event{double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5}``,
``Summary{repeated Value value = 1}``, ``Value{string tag = 1; float simple_value = 2}``.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)  # Castagnoli, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, the checksum of TFRecord files.

    Example:
        >>> hex(crc32c(b"123456789"))  # the standard check value
        '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 fields encode negative numbers in ten bytes
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int = 0, *, scalars: dict[str, float] | None = None,
                 file_version: str | None = None) -> bytes:
    """One serialized ``tensorflow.Event``: scalars at ``step``, or the file-version header.

    ``file_version`` and ``scalars`` are alternatives (one ``oneof`` in the message).

    Example:
        >>> encode_event(1.0, 3, scalars={"loss": 0.5}).hex()
        '09000000000000f03f10032a0d0a0b0a046c6f7373150000003f'
    """
    if file_version is not None and scalars:
        raise ValueError("An event holds either `file_version` or `scalars`, not both.")
    event = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(int(step))
    if file_version is not None:
        event += _length_delimited(3, file_version.encode())
    if scalars:
        values = b"".join(
            _length_delimited(1, _length_delimited(1, tag.encode())
                              + b"\x15" + struct.pack("<f", float(value)))
            for tag, value in scalars.items())
        event += _length_delimited(5, values)
    return event


def tfrecord(data: bytes) -> bytes:
    """``data`` framed as one TFRecord: length, its masked CRC-32C, data, their masked CRC.

    Example:
        >>> tfrecord(b"abc").hex()
        '0300000000000000b099490e6162636e57f121'
    """
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked_crc(length)) + data
            + struct.pack("<I", _masked_crc(data)))


class EventWriter:
    """Append scalar summaries to a new ``events.out.tfevents.*`` file in ``logdir``.

    Example:
        >>> import tempfile
        >>> with EventWriter(tempfile.mkdtemp()) as writer:
        ...     writer.add_scalars(1, {"train_loss": 2.3})
        ...     writer.path.name.startswith("events.out.tfevents.")
        True
    """

    def __init__(self, logdir: str | os.PathLike):
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        # Unique per process and start time, as TensorFlow names them, so a resumed run or a
        # second process writes its own file beside the old ones.
        self.path = logdir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}"
        self._file = self.path.open("ab")
        self._file.write(tfrecord(encode_event(now, 0, file_version="brain.Event:2")))
        self._file.flush()

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Write ``scalars`` (tag -> number) at ``step`` and flush the file."""
        self._file.write(tfrecord(encode_event(time.time(), step, scalars=scalars)))
        self._file.flush()

    def close(self) -> None:
        """Close the file; later writes are an error."""
        self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
