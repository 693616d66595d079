"""``python -m riskmap.cli …``: the same as the ``riskmap`` script."""

from riskmap.cli import main

main()
