"""nlprec.train."""
