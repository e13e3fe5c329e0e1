"""Images, .data files and (later) datasets."""
