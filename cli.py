"""Run the voiceclone command line from a checkout: `python cli.py --help`."""

from voiceclone.cli.app import main

if __name__ == "__main__":
    main()
