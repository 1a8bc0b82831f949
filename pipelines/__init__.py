"""claims-audit: nightly audits of paid Medicaid managed-care claims against policy packs.

Polars' allocator keeps the pages a frame frees for 3 s before handing them back to the
system, instead of the 0.5 s polars sets. The facts stage frees and takes again about a
gigabyte for each partition, every 2 s or so: handing those pages back and faulting them in
again took a tenth of a 10M-line audit (bench/README.md, note 18). Memory stays bounded: a
page is kept 3 s at most, never for the rest of the run. Set before any module imports
polars; a `_RJEM_MALLOC_CONF` of the user's own wins, and child processes inherit either.
"""

from __future__ import annotations

import os

ALLOCATOR_SETTINGS = "dirty_decay_ms:3000,muzzy_decay_ms:3000"
os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR_SETTINGS)
