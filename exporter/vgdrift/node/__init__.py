"""This node's own view: its cached VG metadata (LVM backups)."""
