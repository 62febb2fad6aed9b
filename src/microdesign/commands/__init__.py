"""One module per ``microdesign`` sub-command (see :mod:`microdesign.cli` for the contract)."""
