"""ssdkd.sampling."""
