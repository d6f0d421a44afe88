"""ssdkd.methods."""
