"""AWS IoT Jobs, pure.

The state (`model`), what changes imply (`effects`), the device API over MQTT and HTTPS
(`device`) and the control plane (`control`). The SQLite store is ``aws_iot_mock.state.jobs``.
"""
