from broker.cli import main_entry

main_entry()
