"""Where dockerd keeps containers' log files, asked once, and whether they can be read.

The answer comes from dockerd (``DockerRootDir``); a shipper that cannot read or watch
the folder still runs, and says what it loses: a ``--rm`` container's lines its stream
left out are then reported as a gap instead of being read from its file.
"""

from __future__ import annotations

import logging

from shipper.dockerd import ServesInfo
from shipper.errors import DockerError, DockerUnavailable
from shipper.logfiles import jsonfile
from shipper.logfiles.watch import LogFiles

log = logging.getLogger("logpipe.shipper.source")


async def find_log_files(docker: ServesInfo) -> LogFiles:
    """The containers' log files, watched for new ones where dockerd lets us."""
    try:
        info = await docker.info()
    except DockerUnavailable:
        raise
    except DockerError as exc:
        log.warning("dockerd did not say where its logs are", extra={"reason": str(exc)})
        info = {}
    files = LogFiles(str(info.get("DockerRootDir") or ""))
    problem = jsonfile.unreachable(files.root_dir)
    if problem:
        log.warning(
            "cannot read containers' log files: when dockerd ends a --rm container's"
            " stream before its reader caught up, the lines it left out are reported"
            " as a gap instead of being read from the file",
            extra={"reason": problem},
        )
        return files
    problem = files.start()
    if problem:
        log.warning(
            "cannot watch for new log files: a --rm container's file is opened when"
            " its first line is read, which on a busy host can come after its removal",
            extra={"reason": problem},
        )
    return files
