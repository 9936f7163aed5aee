"""Everything that puts events into Kafka: the emitter apps use and the traffic simulator."""
