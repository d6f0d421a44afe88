"""ssdkd.models."""
