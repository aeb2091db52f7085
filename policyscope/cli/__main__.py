"""`python -m policyscope.cli ...`: the same command as `policyscope ...`."""

from policyscope.cli import main

main()
