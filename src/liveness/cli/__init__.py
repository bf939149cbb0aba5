"""The command-line interface: one module per subcommand, each exporting ``command``."""
