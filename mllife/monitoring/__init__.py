"""Monitoring: drift statistics, drift of new data and served inputs against the
champion's training data, the prediction log's format, and served-traffic queries."""
