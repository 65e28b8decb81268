"""One module per decoder family; each exposes `TARGETS`, a tuple of fuzz targets."""
