"""ssdkd.data."""
