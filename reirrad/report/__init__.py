"""Report formats: terminal tables, machine formats (JSON, CSV, JUnit)."""
