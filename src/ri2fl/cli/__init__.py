"""The ``ri2fl`` command line."""
