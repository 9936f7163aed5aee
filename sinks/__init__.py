"""Everything that takes events out of Kafka into the world. A sink commits an offset
only after its write succeeded."""
