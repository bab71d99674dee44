"""Survey intake for village cadres: templates from the catalog (`columns`, `template`), reading files
(`read`), validation that says what to fix (`validate`), submissions stored raw before processing, review and
registration with codes (`intake`), and ODK Collect's OpenRosa protocol (`odk`)."""
