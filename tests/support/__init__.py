"""The test harness shared by the suite (and, where noted, by bench/)."""
