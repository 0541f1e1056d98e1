"""The shared disks: on-disk formats, device reads, the worker that does them."""
