"""nlprec.nn."""
