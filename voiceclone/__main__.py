"""`python -m voiceclone`: the same as the `voiceclone` command."""

from voiceclone.cli import main

main()
