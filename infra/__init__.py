"""Everything that runs the system but is not domain logic: settings, logging,
the Kafka launcher, the embedded warehouse, process supervision and the CLI."""
