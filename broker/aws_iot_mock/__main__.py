from aws_iot_mock.cli import main_entry

main_entry()
