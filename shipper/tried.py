"""Which segments of the disk buffer a run may have sent: a "tried up to" mark on disk.

A segment left in the disk buffer by an earlier run is sent marked as sent again
(collector.wire.SENT_AGAIN) when that run may have sent it, since the collector then
looks its ids up in their whole streams (a copy indexed before a rollover is not seen by
``create`` in the new write index). That lookup costs the collector and Elasticsearch
CPU, so a segment that run never tried is sent unmarked.

The record is one number in ``<state_dir>/spool/tried.tmp``: **every segment numbered at
or below it may have been tried; none above it was.** The rules that keep it true:

- The mark covers a segment before any byte of the segment's first try goes out
  (:meth:`TriedMark.cover`, awaited by the sender). Segments are numbered in the order
  they are written and taken oldest first, so one number serves for all of them, the
  halves of a segment too large for a collector included (they are sent after the
  segment's first try).
- It is written with :func:`shipper.durable.write_durably` (write, fsync, rename, fsync of
  the folder) in a thread, off the event loop, and moved AHEAD: to the segment's number
  plus ``AHEAD``, so one fsync covers that many batches (a segment already costs one).
  Segments covered but never tried when the shipper dies are sent marked at the next
  start: over-marking costs a lookup, never a duplicate; under-marking (a segment sent
  while the record says it was not) is what the rules exclude.
- It never moves back. Numbers at the next start go on above it (``first_free``), so
  that a segment written then is not taken for one tried before; a segment acknowledged
  but not yet deleted was tried, so it is at or below the mark.
- A record that is missing (a state folder of an older shipper), unreadable or corrupt
  says nothing: every segment left counts as tried (logged once at start, with why), and
  the first try of this run writes a record at or above the last of them.
- Its name ends in ``.tmp``, which every shipper's start deletes in the disk buffer's
  folder (a write cut short) but this version's, which keeps this one name: an older
  shipper started on the state folder (a downgrade) deletes the record before it sends
  anything, so a later start never trusts a mark that a run keeping none outlived (that
  run may have sent segments above it).
- A mark that cannot be written (a full disk) stops the record for the run: the file is
  removed instead (which needs no room), so the next start counts every segment as tried.
  When it cannot be removed either, the segment waits and the write is retried: sending
  it would leave a record that says it was not tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import orjson

from shipper.durable import REPEAT_LOG, errno_name, fsync_folder, write_durably

log = logging.getLogger("logpipe.shipper.tried")

NAME = "tried.tmp"  # in the disk buffer's folder; why .tmp: above
VERSION = 1
# How far past the segment about to be sent the mark is moved: one fsync per AHEAD
# batches, and at most about AHEAD untried segments marked at the next start.
AHEAD = 16
# Segment names have 16 digits (shipper.spool): a mark at or past that is no mark of ours.
LIMIT = 10**16 - 10**6
RETRY_EVERY = 1.0  # seconds between two tries of a mark that could be neither written nor removed


class TriedMark:
    """The "tried up to segment N" record of one state folder."""

    def __init__(self, folder: Path, ahead: int = AHEAD) -> None:
        self.path = folder / NAME  # folder: the disk buffer's (shipper.spool.Spool.folder)
        self.ahead = ahead
        self.known: int | None = None  # the mark read at start; None: no usable record
        self.why_unknown = ""
        self._covered = 0  # every segment at or below this counts as tried
        self._written: int | None = None  # what the file says now (None: nothing usable)
        self._off = False  # the record could not be written and was removed: no more writes
        self._lock = asyncio.Lock()
        self._logged_at = -REPEAT_LOG

    def load(self) -> int | None:
        """Read the mark left by the earlier run: the number, or None (and `why_unknown`)
        when there is no usable record. (Spool.open deletes the temporary files of a
        write cut short.)"""
        self.known, self.why_unknown = _read(self.path)
        self._written = self.known
        self._covered = self.known or 0
        return self.known

    def tried(self, number: int) -> bool:
        """Whether the segment `number`, left by the earlier run, may have been sent by it."""
        return self.known is None or number <= self.known

    def first_free(self) -> int:
        """The lowest segment number that counts as never tried (numbers go on from there)."""
        return self._covered + 1

    def note_left(self, number: int) -> None:
        """A segment left by the earlier run: with no usable record it counts as tried, and
        the first mark written must cover it."""
        if self.known is None:
            self._covered = max(self._covered, number)

    @property
    def mark(self) -> int | None:
        """The mark on disk now, as this run wrote or read it (None: none usable)."""
        return self._written

    async def cover(self, number: int) -> None:
        """Return once the record on disk says segment `number` may have been tried (or
        the record was given up for this run), never before: call it before the first
        byte of the segment's first try goes out."""
        while not self._off and (self._written is None or number > self._written):
            async with self._lock:
                if self._off or (self._written is not None and number <= self._written):
                    return
                target = max(self._covered, number + self.ahead)
                if await self._write(target):
                    if not self._off:
                        self._written = self._covered = target
                    continue
            await asyncio.sleep(RETRY_EVERY)

    async def _write(self, target: int) -> bool:
        """Write `target`; on failure remove the file instead (then the record is off for
        this run). False when neither worked: the caller waits and tries again."""
        data = orjson.dumps({"version": VERSION, "tried_up_to": target})
        try:
            await asyncio.to_thread(write_durably, self.path, data)
            return True
        except OSError as exc:
            failure = exc
        try:
            await asyncio.to_thread(_remove_durably, self.path)
        except OSError as exc:
            now = time.monotonic()
            if now - self._logged_at >= REPEAT_LOG:
                self._logged_at = now
                log.error(
                    "cannot write the record of the batches tried, nor remove it: sending "
                    "waits, retried every second",
                    extra={
                        "path": str(self.path),
                        "errno": errno_name(failure),
                        "reason": failure.strerror,
                        "remove_errno": errno_name(exc),
                    },
                )
            return False
        self._off, self._written = True, None
        log.error(
            "cannot write the record of the batches tried: removed it, so the next start "
            "sends every batch left in the disk buffer marked as sent again",
            extra={
                "path": str(self.path),
                "errno": errno_name(failure),
                "reason": failure.strerror,
            },
        )
        return True


def _read(path: Path) -> tuple[int | None, str]:
    """The mark in `path`, or None and why there is none."""
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable: {errno_name(exc)}: {exc.strerror or exc}"
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    mark = raw.get("tried_up_to") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        return None, f"not a version {VERSION} record"
    if type(mark) is not int or not 0 <= mark < LIMIT:
        return None, f"tried_up_to is {mark!r}, not a segment number"
    return mark, ""


def _remove_durably(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fsync_folder(path.parent)
