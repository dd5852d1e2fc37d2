from aws_iot_mock.startup_gc import main_entry

main_entry()
