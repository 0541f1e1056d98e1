"""What `vgdrift serve` adds: metrics, HTTP server, web config, config, logs."""
