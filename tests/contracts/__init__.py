"""Contract test suites, run against every adapter of a port."""
