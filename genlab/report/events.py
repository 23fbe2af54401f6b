"""Reading TensorBoard event files fast: tensorboard's EventAccumulator over records checksummed the way
TensorBoard's own Rust data server checksums them by default.

Without TensorFlow installed, tensorboard reads records through a pure-Python CRC-32C of every byte; for a
run's event files (mostly PNG image grids) that is ~95% of the reading time in a profile. The Rust data
server (``tensorboard --load_fast``) checks each record's length always and its payload only when the
payload does not parse (its ``--no-checksum`` default). :class:`ChecksumOnFailureLoader` does the same, and
everything else stays tensorboard's: ``event_pb2`` parses the events, the EventAccumulator keeps the scalars
(and purges the steps a resumed run rewrote).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("genlab")
HEADER = 12  # uint64 length, uint32 masked CRC-32C of the length
FOOTER = 4  # uint32 masked CRC-32C of the payload


class CorruptEventFile(ValueError):
    """A record whose checksum does not match: the file is damaged, not merely still being written."""


class ChecksumOnFailureLoader:
    """The loader interface of tensorboard's ``DirectoryWatcher`` (``Load()`` yields the new ``Event`` protos)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0

    def Load(self) -> Iterator:  # noqa: N802 - tensorboard's loader interface
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

        from genlab.utils.rundir import open_regular

        with os.fdopen(open_regular(self.path), "rb") as f:  # no links, no FIFOs: a run dir is untrusted
            f.seek(self.offset)
            while True:
                start = f.tell()
                header = f.read(HEADER)
                if len(header) < HEADER:
                    return  # end of file, or a record still being written
                (length,) = struct.unpack("<Q", header[:8])
                if masked_crc32c(header[:8]) != struct.unpack("<I", header[8:])[0]:
                    raise CorruptEventFile(
                        f"{Path(self.path).name}: record at byte {start} has a bad length checksum"
                    )
                payload = f.read(length)
                footer = f.read(FOOTER)
                if len(payload) < length or len(footer) < FOOTER:
                    return  # a record still being written: the next Load() continues here
                try:
                    event = Event.FromString(payload)
                except DecodeError as e:
                    if masked_crc32c(payload) != struct.unpack("<I", footer)[0]:
                        raise CorruptEventFile(
                            f"{Path(self.path).name}: record at byte {start} is damaged (checksum mismatch)"
                        ) from e
                    raise CorruptEventFile(
                        f"{Path(self.path).name}: record at byte {start} is not an event"
                    ) from e
                self.offset = f.tell()
                yield event


def accumulator(tb_dir: Path, size_guidance: dict[str, int]):
    """A loaded ``EventAccumulator`` of every event file in ``tb_dir``, read through the loader above."""
    from tensorboard.backend.event_processing import directory_watcher, io_wrapper
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genlab.utils.compat import set_event_loader

    acc = EventAccumulator(str(tb_dir), size_guidance=size_guidance)
    watcher = directory_watcher.DirectoryWatcher(
        str(tb_dir), ChecksumOnFailureLoader, io_wrapper.IsSummaryEventsFile
    )
    if not set_event_loader(acc, watcher):  # tests/test_report.py checks both readers give the same result
        log.debug("tensorboard's EventAccumulator changed: reading event files with its own (slower) reader")
    acc.Reload()
    return acc
