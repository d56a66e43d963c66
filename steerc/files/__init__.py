"""Guarded file I/O: every path steerc reads or writes goes through here."""
