"""aws-iot-mock: an offline stand-in for the AWS IoT Core device endpoint."""

__version__ = "0.1.0"
