"""`python -m yilian` is the `yilian` command."""

from yilian.cli import main

main()
