"""``python -m vggnet`` runs the command-line interface."""

from vggnet.cli import main

main()
