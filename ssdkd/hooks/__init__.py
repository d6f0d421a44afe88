"""ssdkd.hooks."""
