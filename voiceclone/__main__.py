"""`python -m voiceclone`: the same as the `voiceclone` command."""

from voiceclone.cli.app import main

main()
