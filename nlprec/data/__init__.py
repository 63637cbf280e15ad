"""nlprec.data."""
