"""The panel's open-file limit, raised to what its connections need (docs/architecture.md,
"The hop client").

The panel may hold up to MAX_HOP_CALLS hop connections at once (its traffic's journeys in
flight and a batch's customers, each call its own connection), besides its services' pipes,
pidfds, the database and the window. A desktop session's soft limit is often 1024 (systemd's
default, with a hard limit of 524288), which a full batch during full traffic comes close to;
the soft limit is raised to the hard one, up to WANTED, once, before anything is opened. The
fork server and the services it forks inherit it."""

from __future__ import annotations

import resource

WANTED = 65_536  # far above what a panel holds; no reason to take a whole hard limit of 2^20


def raise_open_files_limit() -> int:
    """The soft RLIMIT_NOFILE after raising it towards the hard limit (never lowered)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = WANTED if hard == resource.RLIM_INFINITY else min(hard, WANTED)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
