"""The AWS IoT rules engine's pure parts and its action shell.

* :mod:`aws_iot_mock.rules.sql` parses and evaluates AWS IoT SQL (SELECT/FROM/WHERE, SET).
* :mod:`aws_iot_mock.rules.sql_values` holds the SQL data types and their conversions.
* :mod:`aws_iot_mock.rules.sql_functions` and :mod:`aws_iot_mock.rules.sql_time` are the
  built-in functions.
* :mod:`aws_iot_mock.rules.templates` evaluates ``${...}`` substitution templates.
* :mod:`aws_iot_mock.rules.errors` builds the document an ``errorAction`` receives.
* :mod:`aws_iot_mock.rules.actions` performs rule actions against real (local) services.

See ``docs/rules-engine-reference.md`` for the AWS sources and what is not emulated.
"""
