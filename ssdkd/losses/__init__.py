"""ssdkd.losses."""
