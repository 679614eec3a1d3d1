"""One small module per platform.  Connectors read and normalise; they never write."""
