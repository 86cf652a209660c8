"""Kafka and Faust plumbing: the Faust app and its topics and tables (the pipeline handle),
client configuration, the publisher, and the guards around Faust (offsets, partition
sequence, changelog writes, RocksDB memory)."""
