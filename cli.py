"""Run the voiceclone command line from a checkout: `python cli.py --help`."""

from voiceclone.cli import main

if __name__ == "__main__":
    main()
