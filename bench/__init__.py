"""`make bench`: our broker side by side with Mosquitto and amqtt (see bench/README.md)."""
