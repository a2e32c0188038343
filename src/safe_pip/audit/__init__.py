"""The audit log: one JSON line per mutating operation, appended under a lock, read from the end.

One module per concern, so the layout says where each lives:

- ``record``: what a record holds (``base_record``), redacted again before it is
  written (``redact_record``), and the names it is about (``record_packages``);
- ``locations``: where an env's records go (``log_locations``, from the policy's
  ``audit.location``);
- ``store``: writing, i.e. directories and modes, the lock, and ``append`` (one
  ``write`` on an ``O_APPEND`` descriptor, chained to the line before);
- ``reader``: the one reader of log files (``read_records``, ``read_all``), with
  the filters of ``safe-pip log`` (``RecordFilter``);
- ``verify``: the hash chain check of ``safe-pip log --verify``;
- ``redact``: secrets out of argv, URLs and requirement files.

The format is docs/audit-log.md.  This package imports nothing itself: the pip
path loads only the modules it uses.
"""
