"""ssdkd.generators."""
