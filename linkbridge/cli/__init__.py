"""The `linkbridge` command line: the parser and one module per command group.
The top layer: may import every other part of linkbridge.
"""
