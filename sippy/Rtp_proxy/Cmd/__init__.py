"""Command helpers shared by the RTPproxy session classes."""
