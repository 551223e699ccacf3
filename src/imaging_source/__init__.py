"""imaging_source package."""
