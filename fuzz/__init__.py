"""Coverage-guided fuzzing of the MQTT codec, the ClientHello reader and topic validation."""
