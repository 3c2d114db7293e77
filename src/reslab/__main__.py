from reslab.cli import run

run()
