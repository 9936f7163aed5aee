"""The local Apache Kafka 4.x broker (``launcher``), run from Maven Central jars, and
``topics.ensure_topics`` for creating topics on it or on any real cluster."""
